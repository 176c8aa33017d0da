# ci_add_backend(<name> VERSION x.y.z SOURCES ... [LIBS ...] [NO_INSTALL])
#
# Builds ci-backend-<name>.so from an OBJECT library (ci_be_<name>_obj) that
# the plugin's own unit tests can link directly. Plugins see only include/.
function(ci_add_backend name)
	cmake_parse_arguments(B "NO_INSTALL" "VERSION" "SOURCES;LIBS" ${ARGN})
	if(NOT B_VERSION)
		message(FATAL_ERROR "ci_add_backend(${name}): VERSION is required")
	endif()
	add_library(ci_be_${name}_obj OBJECT ${B_SOURCES})
	target_link_libraries(ci_be_${name}_obj PUBLIC ci_abi ${B_LIBS})
	target_compile_definitions(ci_be_${name}_obj PRIVATE CI_BACKEND_VERSION="${B_VERSION}")
	add_library(ci_be_${name} MODULE $<TARGET_OBJECTS:ci_be_${name}_obj>)
	target_link_libraries(ci_be_${name} PRIVATE ${B_LIBS})
	set_target_properties(ci_be_${name} PROPERTIES PREFIX "" OUTPUT_NAME "ci-backend-${name}"
		LIBRARY_OUTPUT_DIRECTORY ${CI_PLUGIN_OUTPUT_DIR})
	if(NOT CI_SANITIZE)
		# Host services come from the ci_host table: any link-time call
		# into the core is a bug, and -z defs makes it a build error.
		target_link_options(ci_be_${name} PRIVATE -Wl,-z,defs)
	endif()
	if(NOT B_NO_INSTALL)
		install(TARGETS ci_be_${name} LIBRARY DESTINATION ${CI_INSTALL_PLUGIN_DIR})
	endif()
endfunction()
