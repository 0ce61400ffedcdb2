# Environment for building and running vlmd on the GPU machine (source it).
export VLMD_DEB=${VLMD_DEB:-/opt/deb}
export LD_LIBRARY_PATH="$VLMD_DEB/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
export LIBRARY_PATH="$VLMD_DEB/usr/lib/x86_64-linux-gnu"
export PKG_CONFIG_LIBDIR="$VLMD_DEB/usr/lib/x86_64-linux-gnu/pkgconfig:$VLMD_DEB/usr/share/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$VLMD_DEB"
