# Warning flags for host (C++) and device (CUDA) code, and the -gencode list from MINFER_CUDA_ARCHS.
set(MINFER_CXX_WARNINGS -Wall -Wextra -Wpedantic -Wshadow -Wno-unused-parameter)
if(MINFER_WERROR)
  list(APPEND MINFER_CXX_WARNINGS -Werror)
endif()

set(MINFER_GENCODE "")
foreach(arch IN LISTS MINFER_CUDA_ARCHS)
  list(APPEND MINFER_GENCODE "-gencode=arch=compute_${arch},code=sm_${arch}")
endforeach()

# minfer_target_warnings(tgt): apply our flags to a target of C++ and/or CUDA sources.
function(minfer_target_warnings tgt)
  target_compile_options(${tgt} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:${MINFER_CXX_WARNINGS}>)
endfunction()

# minfer_cuda_target(tgt): gencode list, device warnings as errors, host-side warnings through -Xcompiler.
function(minfer_cuda_target tgt)
  set(xc "-Wall,-Wextra,-Wno-unused-parameter")
  set(dev --expt-relaxed-constexpr -lineinfo)
  if(MINFER_WERROR)
    list(APPEND dev -Werror=all-warnings)
    set(xc "${xc},-Werror")
  endif()
  target_compile_options(${tgt} PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:${MINFER_GENCODE} ${dev} -Xcompiler=${xc}>)
  set_target_properties(${tgt} PROPERTIES CUDA_SEPARABLE_COMPILATION OFF)
  target_link_options(${tgt} PRIVATE $<DEVICE_LINK:${MINFER_GENCODE}>)
endfunction()
