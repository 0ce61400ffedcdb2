# Locates protoc and grpc_cpp_plugin. Override with -DVLMD_PROTOC=... -DVLMD_GRPC_PLUGIN=...
# (the GPU build points them at the carried Debian packages).
if(NOT VLMD_PROTOC)
  find_program(VLMD_PROTOC protoc REQUIRED)
endif()
if(NOT VLMD_GRPC_PLUGIN)
  find_program(VLMD_GRPC_PLUGIN grpc_cpp_plugin REQUIRED)
endif()

# vlmd_generate_proto(<out-var> <proto files...>): generates .pb and .grpc.pb sources.
function(vlmd_generate_proto out_var)
  set(srcs)
  foreach(proto ${ARGN})
    get_filename_component(abs ${proto} ABSOLUTE)
    file(RELATIVE_PATH rel ${CMAKE_SOURCE_DIR}/proto ${abs})
    string(REGEX REPLACE "\\.proto$" "" base ${rel})
    set(gen ${CMAKE_BINARY_DIR}/gen/${base})
    add_custom_command(
      OUTPUT ${gen}.pb.cc ${gen}.pb.h ${gen}.grpc.pb.cc ${gen}.grpc.pb.h
      COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/gen
      COMMAND ${VLMD_PROTOC} --proto_path=${CMAKE_SOURCE_DIR}/proto
              --cpp_out=${CMAKE_BINARY_DIR}/gen --grpc_out=${CMAKE_BINARY_DIR}/gen
              --plugin=protoc-gen-grpc=${VLMD_GRPC_PLUGIN} ${abs}
      DEPENDS ${abs}
      COMMENT "protoc ${rel}")
    list(APPEND srcs ${gen}.pb.cc ${gen}.grpc.pb.cc)
  endforeach()
  set(${out_var} ${srcs} PARENT_SCOPE)
endfunction()
