# Enforces the dependency rule of DESIGN.md section 1 at configure time:
#   reference -> engine/core; kernels -> kernels/common; engine -> kernels + core;
#   validate, bench, tests -> everything. Nothing links reference into the engine.
# Two checks: the direct link libraries of each layer's targets, and the #include lines of its sources.

function(_minfer_forbid_links tgt)
  if(NOT TARGET ${tgt})
    return()
  endif()
  get_target_property(libs ${tgt} LINK_LIBRARIES)
  get_target_property(ilibs ${tgt} INTERFACE_LINK_LIBRARIES)
  foreach(lib IN LISTS libs ilibs)
    foreach(bad IN LISTS ARGN)
      if(lib STREQUAL bad)
        message(FATAL_ERROR "dependency rule (DESIGN.md 1): ${tgt} must not link ${bad}")
      endif()
    endforeach()
  endforeach()
endfunction()

_minfer_forbid_links(minfer_core minfer_reference minfer_kernels minfer_engine CUDA::cudart CUDA::cublasLt)
_minfer_forbid_links(minfer_reference minfer_kernels minfer_engine CUDA::cudart CUDA::cublasLt)
_minfer_forbid_links(minfer_kernels minfer_core minfer_reference minfer_engine)
_minfer_forbid_links(minfer_engine minfer_reference)

# Include scan: layer directory -> regex of includes it must not contain.
function(_minfer_forbid_includes dir regex why)
  file(GLOB_RECURSE srcs CONFIGURE_DEPENDS
       "${PROJECT_SOURCE_DIR}/${dir}/*.h" "${PROJECT_SOURCE_DIR}/${dir}/*.cpp"
       "${PROJECT_SOURCE_DIR}/${dir}/*.cu" "${PROJECT_SOURCE_DIR}/${dir}/*.cuh")
  foreach(src IN LISTS srcs)
    file(STRINGS "${src}" hits REGEX "${regex}")
    if(hits)
      list(GET hits 0 first)
      message(FATAL_ERROR "dependency rule (DESIGN.md 1): ${src} ${why}: ${first}")
    endif()
  endforeach()
endfunction()

_minfer_forbid_includes(engine/core "#include [<\"](cuda|cublas|curand|kernels/|reference/|engine/model|engine/runtime)" "is host-only core")
_minfer_forbid_includes(reference "#include [<\"](cuda|cublas|curand|kernels/|engine/model|engine/runtime|validate/|bench/)" "is scalar host reference")
_minfer_forbid_includes(kernels "#include [<\"](reference/|engine/model|engine/runtime|engine/cli|validate/|bench/)" "is a kernel")
_minfer_forbid_includes(engine/model "#include [<\"](reference/|validate/|bench/)" "is engine")
_minfer_forbid_includes(engine/runtime "#include [<\"](reference/|validate/|bench/)" "is engine")

# kernels may see exactly one engine/core header: the pure dtype enum.
file(GLOB_RECURSE _ksrcs CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/kernels/*.h" "${PROJECT_SOURCE_DIR}/kernels/*.cu" "${PROJECT_SOURCE_DIR}/kernels/*.cuh")
foreach(src IN LISTS _ksrcs)
  file(STRINGS "${src}" hits REGEX "#include [<\"]engine/")
  foreach(h IN LISTS hits)
    if(NOT h MATCHES "engine/core/dtype\\.h")
      message(FATAL_ERROR "dependency rule (DESIGN.md 1): ${src} includes ${h}; kernels see only engine/core/dtype.h")
    endif()
  endforeach()
endforeach()
