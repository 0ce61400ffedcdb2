# vlmd for NVIDIA GPUs: vlmd (server, worker, offline tool) and vlmctl built against the CUDA
# libtorch of the PyTorch pip wheel.
#
#   docker build -t vlmd:latest .
#   docker run --gpus all -p 50051:50051 -v /models:/models:ro -v vlmd-state:/var/lib/vlmd \
#     -v $PWD/deploy/compose/vlmd.yaml:/etc/vlmd/vlmd.yaml:ro vlmd:latest
#
# deploy/compose/ runs it with Prometheus and Grafana; deploy/k8s/ on Kubernetes. No Docker
# engine runs in vlmd's CI: tests/deploy/check_deploy.py checks this file's structure (stages,
# non-root USER, HEALTHCHECK, tokenizer path) instead of building it.

ARG CUDA_VERSION=12.6.3
ARG UBUNTU=ubuntu24.04

# ---------------------------------------------------------------------------------------------
# Build stage: compilers, the -dev packages (gRPC, protobuf, abseil, prometheus-cpp, ...), CUDA
# toolkit (Torch's CMake config needs nvcc) and the PyTorch wheel for its libtorch.
FROM nvidia/cuda:${CUDA_VERSION}-cudnn-devel-${UBUNTU} AS build
ARG TORCH_VERSION=2.6.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cu126
# GPU architectures to build for (Torch's list syntax): A100, A10/L4, L40/4090, H100/H200.
ARG TORCH_CUDA_ARCH_LIST="8.0;8.6;8.9;9.0"
ARG JOBS=8
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config git ca-certificates curl \
      python3 python3-venv npm \
      libgrpc++-dev libgrpc-dev protobuf-compiler protobuf-compiler-grpc libprotobuf-dev \
      libabsl-dev prometheus-cpp-dev libyaml-cpp-dev nlohmann-json3-dev \
      libstb-dev libjpeg-dev libpcre2-dev libutf8proc-dev libcli11-dev libsqlite3-dev libssl-dev zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/torch \
    && /opt/torch/bin/pip install --no-cache-dir "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}"
WORKDIR /src
COPY . .
RUN ./scripts/fetch_tokenizer.sh /src/third_party/tokenizer
RUN TORCH_CMAKE="$(/opt/torch/bin/python -c 'import torch; print(torch.utils.cmake_prefix_path)')" \
    && export TORCH_CUDA_ARCH_LIST \
    && BUILD_TYPE=Release JOBS="${JOBS}" TARGETS="vlmd vlmctl" ./scripts/build.sh \
         -DVLMD_BUILD_TESTS=OFF -DCMAKE_PREFIX_PATH="${TORCH_CMAKE}" \
         -DTORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST}"
# What the runtime stage takes: the two binaries; libtorch and the CUDA libraries of the wheel
# (nvidia-* packages) at the same relative paths, so the wheel's RPATHs still resolve; and the
# other shared libraries the binaries load (gRPC, protobuf, abseil, prometheus-cpp, ...), found
# with ldd rather than by package name. glibc and libstdc++ come with the runtime base image.
RUN set -eu; SP="$(/opt/torch/bin/python -c 'import site; print(site.getsitepackages()[0])')"; \
    mkdir -p /out/torch /out/bin /out/lib; \
    cp -a "${SP}/torch" "${SP}/nvidia" /out/torch/; \
    rm -rf /out/torch/torch/include /out/torch/torch/share /out/torch/torch/test /out/torch/torch/bin; \
    find /out/torch \( -name '*.py' -o -name '*.pyi' -o -name '__pycache__' \) -prune -exec rm -rf {} +; \
    cp build/server/vlmd build/client/vlmctl /out/bin/; \
    LD_LIBRARY_PATH="${SP}/torch/lib" ldd /out/bin/vlmd /out/bin/vlmctl \
      | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u \
      | grep -v -e "${SP}" -e '/libc\.so' -e '/libm\.so' -e '/ld-linux' -e '/libpthread' \
                -e '/libdl\.so' -e '/librt\.so' -e '/libstdc++' -e '/libgcc_s' -e '/libcuda\.so' \
      | xargs -r cp -L -t /out/lib/

# ---------------------------------------------------------------------------------------------
# Runtime stage: the runtime libraries only, a non-root user, a health check.
FROM nvidia/cuda:${CUDA_VERSION}-base-${UBUNTU} AS runtime
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/torch /opt/torch
COPY --from=build /out/lib/ /usr/local/lib/vlmd/
COPY --from=build /out/bin/ /usr/local/bin/
COPY --from=build /src/third_party/tokenizer/tokenizer.json /usr/share/vlmd/tokenizer.json
COPY deploy/vlmd.yaml /usr/share/vlmd/vlmd.yaml.sample
RUN { echo /usr/local/lib/vlmd; echo /opt/torch/torch/lib; ls -d /opt/torch/nvidia/*/lib; } \
      > /etc/ld.so.conf.d/vlmd.conf \
    && ldconfig \
    && groupadd --system --gid 10001 vlmd \
    && useradd --system --uid 10001 --gid vlmd --home-dir /var/lib/vlmd --create-home vlmd \
    && mkdir -p /etc/vlmd /data /models \
    && chown vlmd:vlmd /data \
    && vlmctl --help >/dev/null \
    && if ldd /usr/local/bin/vlmd | grep -v 'libcuda\.so' | grep 'not found'; then exit 1; fi
USER vlmd
WORKDIR /var/lib/vlmd
VOLUME ["/var/lib/vlmd"]
EXPOSE 50051 9090
# SERVING once the models are loaded; NOT_SERVING while loading or draining.
HEALTHCHECK --interval=30s --timeout=10s --start-period=600s --retries=3 \
  CMD ["vlmctl", "--addr", "127.0.0.1:50051", "--timeout", "5", "health"]
ENTRYPOINT ["vlmd"]
CMD ["serve", "--config", "/etc/vlmd/vlmd.yaml"]
