# The Docker Engine API client compiled into the docker and podman plugins.
# Not a library: each plugin lists ${CI_ENGINE_SOURCES} among its own
# sources, so every .so carries its own copy and is versioned on its own.
#
#   include(${CMAKE_SOURCE_DIR}/plugins/engine/engine.cmake)
#   ci_add_backend(docker VERSION x.y.z SOURCES docker.c ${CI_ENGINE_SOURCES}
#                  LIBS ${CI_ENGINE_LIBS})
#   target_include_directories(ci_be_docker_obj PRIVATE ${CI_ENGINE_DIR})
set(CI_ENGINE_DIR ${CMAKE_CURRENT_LIST_DIR})
set(CI_ENGINE_SOURCES
	${CI_ENGINE_DIR}/eng_backend.c
	${CI_ENGINE_DIR}/eng_create.c
	${CI_ENGINE_DIR}/eng_demux.c
	${CI_ENGINE_DIR}/eng_exec.c
	${CI_ENGINE_DIR}/eng_files.c
	${CI_ENGINE_DIR}/eng_http.c
	${CI_ENGINE_DIR}/eng_pool.c
	${CI_ENGINE_DIR}/eng_tar.c
	${CI_ENGINE_DIR}/eng_util.c)
if(NOT TARGET PkgConfig::LIBARCHIVE)
	pkg_check_modules(LIBARCHIVE REQUIRED IMPORTED_TARGET GLOBAL libarchive)
endif()
if(NOT TARGET Threads::Threads)
	set(THREADS_PREFER_PTHREAD_FLAG ON)
	find_package(Threads REQUIRED)
endif()
# jansson and libarchive are private to each plugin (never json_set_alloc_funcs).
set(CI_ENGINE_LIBS PkgConfig::JANSSON PkgConfig::LIBARCHIVE Threads::Threads)
