# ci-server prelude, imported at interpreter start through PYTHONPATH.
# Plot capture without cost for code that never plots: nothing heavy is
# imported here; matplotlib and plotly are patched only when the program
# itself imports them. Nothing is printed to the program's output.
import os
import sys

_OUT_DIR = os.environ.get("CI_OUTPUT_DIR", "/mnt/data")
_counter = [0]


def _next_path(ext):
    while True:
        _counter[0] += 1
        path = os.path.join(_OUT_DIR, "plot_%d.%s" % (_counter[0], ext))
        if not os.path.exists(path):
            return path


def _save_open_figures(plt, skip_saved=False):
    for num in list(plt.get_fignums()):
        fig = plt.figure(num)
        if skip_saved and getattr(fig, "_ci_saved", False):
            continue  # the program saved it itself: no duplicate at exit
        try:
            fig.savefig(_next_path("png"), dpi=min(float(fig.dpi), 200.0))
        except Exception as exc:  # a broken figure must not hide the others
            sys.stderr.write("plot capture: %s\n" % exc)
    plt.close("all")


def _patch_pyplot(plt):
    import atexit

    def show(*args, **kwargs):
        _save_open_figures(plt)

    plt.show = show
    real_savefig = plt.Figure.savefig

    def savefig(self, *args, **kwargs):
        self._ci_saved = True
        return real_savefig(self, *args, **kwargs)

    plt.Figure.savefig = savefig
    atexit.register(lambda: _save_open_figures(plt, skip_saved=True))


def _patch_plotly_io(pio):
    def show(fig, *args, **kwargs):
        if not hasattr(fig, "write_html"):
            import plotly.graph_objects as go
            fig = go.Figure(fig)
        fig.write_html(_next_path("html"), include_plotlyjs="cdn")
        try:
            import kaleido  # noqa: F401  (optional: static PNG as well)
            fig.write_image(_next_path("png"))
        except Exception:
            pass

    pio.show = show


_HOOKS = {"matplotlib.pyplot": _patch_pyplot, "plotly.io": _patch_plotly_io}


class _PatchingLoader:
    def __init__(self, real, hook):
        self._real = real
        self._hook = hook

    def create_module(self, spec):
        return self._real.create_module(spec)

    def exec_module(self, module):
        self._real.exec_module(module)
        self._hook(module)


class _PostImportFinder:
    """Finds nothing itself: wraps the real loader of the modules in _HOOKS."""

    def find_spec(self, name, path=None, target=None):
        hook = _HOOKS.get(name)
        if hook is None:
            return None
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _PatchingLoader(spec.loader, hook)
        return spec


sys.meta_path.insert(0, _PostImportFinder())
