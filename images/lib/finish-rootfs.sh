#!/bin/sh
# Runs inside a sandbox image's root filesystem as its last build step, both
# from a Dockerfile (RUN) and from images/build.sh (chroot). Makes the layout
# the docker and podman backends expect:
#   - user "sandbox" uid/gid 1000 runs the code (the keep-alive PID 1 runs as
#     nobody, 65534, so a clean-up "kill -KILL -1" from uid 1000 spares it);
#   - /mnt/data is the only writable data directory: owned by 1000, mode 1777.
#     Engines mount a tmpfs there and copy the image directory's mode onto
#     it; podman 4.3 does not copy the owner (and rejects uid=), so the mode
#     is what lets uid 1000 write there. Only uids 1000 and 65534 exist in a
#     sandbox, and the sticky bit keeps 65534 from touching 1000's files;
#   - no apt caches, docs or man pages.
set -eu

if ! getent group sandbox >/dev/null; then
	groupadd -g 1000 sandbox
fi
if ! getent passwd sandbox >/dev/null; then
	useradd -u 1000 -g 1000 -d /tmp -M -s /bin/sh sandbox
fi
mkdir -p /mnt/data
chown 1000:1000 /mnt/data
chmod 1777 /mnt/data
chmod 1777 /tmp

apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old \
	/usr/share/doc/* /usr/share/man/* /usr/share/info/* /var/log/apt/* /var/log/dpkg.log
# Keep only the C.UTF-8 locale data.
find /usr/share/locale -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true
