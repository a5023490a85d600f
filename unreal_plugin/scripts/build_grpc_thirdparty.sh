#!/usr/bin/env bash
# Builds the static libraries of the GenWorldGrpc ThirdParty module (Linux, macOS):
# gRPC (+ its bundled protobuf, abseil, upb, re2, c-ares) from a pinned tag, and the
# UE-free GenWorld core (unreal_plugin/core) against them, then copies headers and
# libraries into the layout GenWorldGrpc.Build.cs reads:
#   unreal_plugin/GenWorldBridge/Source/ThirdParty/GenWorldGrpc/include/
#   unreal_plugin/GenWorldBridge/Source/ThirdParty/GenWorldGrpc/lib/<Linux|Mac>/
#
# Usage: UE_ROOT=/path/to/UnrealEngine bash unreal_plugin/scripts/build_grpc_thirdparty.sh
# Env:   UE_ROOT (required)            engine root (contains Engine/)
#        GRPC_TAG (default below)      gRPC release to build
#        UE_OPENSSL_ROOT, UE_ZLIB_ROOT override the auto-detected engine OpenSSL/zlib folders
#        UE_LINUX_TOOLCHAIN            Linux: UE's clang toolchain root (auto-detected)
#        JOBS                          parallel build jobs
#
# Why these flags (all libraries must match how UE compiles and links modules):
# - gRPC_SSL_PROVIDER=package / gRPC_ZLIB_PROVIDER=package against the ENGINE's OpenSSL
#   and zlib: one copy of each in the process (two OpenSSLs = duplicate symbols or, worse,
#   two TLS states). The module links them via AddEngineThirdPartyPrivateStaticDependencies.
# - -fno-rtti and -fno-exceptions for gRPC/protobuf/abseil (UE builds without RTTI, and
#   gRPC core, abseil and protobuf support both; protobuf gets GOOGLE_PROTOBUF_NO_RTTI).
#   The core is built -fno-rtti but WITH exceptions: it reports errors as exceptions
#   internally and GenWorldBridge (bEnableExceptions) throws them across its adapter.
# - ABSL_PROPAGATE_CXX_STD=ON with CMAKE_CXX_STANDARD=20: abseil's ABI (std::string_view,
#   std::optional, <compare> aliases) depends on the language standard, and UE 5.3+
#   compiles modules as C++20 — mismatching it gives link errors or silent ODR breaks.
# - Position-independent code: UE links modules into shared libraries on Linux/Mac
#   (editor builds) — non-PIC static archives cannot go into those.
# - Linux: UE's bundled clang and libc++ (-nostdinc++ + the engine's libc++ headers),
#   because UE links against its own libc++; archives built against libstdc++ do not link.
set -euo pipefail

GRPC_TAG=${GRPC_TAG:-v1.62.1}        # bundles protobuf 25.x, abseil 20240116, re2, c-ares 1.19
NLOHMANN_JSON_TAG=${NLOHMANN_JSON_TAG:-v3.11.3}  # header-only, used privately by the core
CXX_STANDARD=20
: "${UE_ROOT:?set UE_ROOT to the Unreal Engine root (the folder that contains Engine/)}"

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
MODULE="$REPO/unreal_plugin/GenWorldBridge/Source/ThirdParty/GenWorldGrpc"
WORK=${WORK:-"$REPO/unreal_plugin/build/thirdparty"}
PREFIX="$WORK/install"
JOBS=${JOBS:-$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 4)}
THIRD_PARTY="$UE_ROOT/Engine/Source/ThirdParty"

case "$(uname -s)" in
  Linux)  PLATFORM=Linux; UE_ARCH=x86_64-unknown-linux-gnu ;;
  Darwin) PLATFORM=Mac ;;
  *) echo "unsupported host $(uname -s); use build_grpc_thirdparty.ps1 on Windows" >&2; exit 1 ;;
esac

newest_dir() { ls -d "$1"/*/ 2>/dev/null | sort -V | tail -n 1 | sed 's:/$::'; }
first_file() { find "$1" -path "$2" -name "$3" 2>/dev/null | sort | head -n 1; }

# ------------------------------------------------------------------ engine OpenSSL / zlib
OPENSSL_ROOT=${UE_OPENSSL_ROOT:-$(newest_dir "$THIRD_PARTY/OpenSSL")}
ZLIB_ROOT=${UE_ZLIB_ROOT:-$(newest_dir "$THIRD_PARTY/zlib")}
if [ "$PLATFORM" = Linux ]; then
  OPENSSL_INCLUDE=$(dirname "$(first_file "$OPENSSL_ROOT" "*$UE_ARCH*" ssl.h)")/..
  SSL_LIB=$(first_file "$OPENSSL_ROOT" "*$UE_ARCH*" libssl.a)
  CRYPTO_LIB=$(first_file "$OPENSSL_ROOT" "*$UE_ARCH*" libcrypto.a)
  ZLIB_LIB=$(first_file "$ZLIB_ROOT" "*$UE_ARCH*" libz.a)
else
  OPENSSL_INCLUDE=$(dirname "$(first_file "$OPENSSL_ROOT" "*Mac*" ssl.h)")/..
  SSL_LIB=$(first_file "$OPENSSL_ROOT" "*Mac*" libssl.a)
  CRYPTO_LIB=$(first_file "$OPENSSL_ROOT" "*Mac*" libcrypto.a)
  ZLIB_LIB=$(first_file "$ZLIB_ROOT" "*Mac*" libz.a)
fi
ZLIB_INCLUDE=$(dirname "$(first_file "$ZLIB_ROOT" "*" zlib.h)")
for f in "$SSL_LIB" "$CRYPTO_LIB" "$ZLIB_LIB" "$OPENSSL_INCLUDE/openssl/ssl.h" "$ZLIB_INCLUDE/zlib.h"; do
  [ -f "$f" ] || { echo "engine library not found: '$f' (set UE_OPENSSL_ROOT / UE_ZLIB_ROOT)" >&2; exit 1; }
done
echo "OpenSSL: $SSL_LIB"; echo "zlib:    $ZLIB_LIB"

# ------------------------------------------------------------------ compiler flags
COMMON_FLAGS="-fPIC -fvisibility=hidden"
CMAKE_TOOLCHAIN_ARGS=()
if [ "$PLATFORM" = Linux ]; then
  TOOLCHAIN=${UE_LINUX_TOOLCHAIN:-$(newest_dir "$UE_ROOT/Engine/Extras/ThirdPartyNotUE/SDKs/HostLinux/Linux_x64")/$UE_ARCH}
  LIBCXX="$THIRD_PARTY/Unix/LibCxx"
  LIBCXX_LIB=$(first_file "$LIBCXX/lib" "*$UE_ARCH*" libc++.a)
  [ -x "$TOOLCHAIN/bin/clang++" ] || { echo "UE clang not found under $TOOLCHAIN (set UE_LINUX_TOOLCHAIN; run Setup.sh)" >&2; exit 1; }
  [ -f "$LIBCXX_LIB" ] || { echo "UE libc++ not found under $LIBCXX" >&2; exit 1; }
  COMMON_FLAGS="$COMMON_FLAGS --sysroot=$TOOLCHAIN -nostdinc++ -isystem $LIBCXX/include -isystem $LIBCXX/include/c++/v1"
  LINK_FLAGS="--sysroot=$TOOLCHAIN -nodefaultlibs -L$(dirname "$LIBCXX_LIB") -lc++ -lc++abi -lm -lc -lgcc_s -lgcc -lpthread -ldl"
  CMAKE_TOOLCHAIN_ARGS=(
    -DCMAKE_C_COMPILER="$TOOLCHAIN/bin/clang"
    -DCMAKE_CXX_COMPILER="$TOOLCHAIN/bin/clang++"
    -DCMAKE_EXE_LINKER_FLAGS="$LINK_FLAGS"
  )
else
  CMAKE_TOOLCHAIN_ARGS=(-DCMAKE_OSX_ARCHITECTURES="arm64;x86_64" -DCMAKE_OSX_DEPLOYMENT_TARGET=${MACOSX_DEPLOYMENT_TARGET:-12.0})
fi
NO_RTTI_NO_EXCEPTIONS="-fno-rtti -fno-exceptions -DGOOGLE_PROTOBUF_NO_RTTI=1 -DPROTOBUF_USE_EXCEPTIONS=0 -DGRPC_ALLOW_EXCEPTIONS=0"

COMMON_CMAKE=(
  -G "${CMAKE_GENERATOR:-Ninja}"
  -DCMAKE_BUILD_TYPE=Release
  -DCMAKE_INSTALL_PREFIX="$PREFIX"
  -DCMAKE_PREFIX_PATH="$PREFIX"
  -DCMAKE_CXX_STANDARD=$CXX_STANDARD
  -DCMAKE_POSITION_INDEPENDENT_CODE=ON
  -DBUILD_SHARED_LIBS=OFF
  "${CMAKE_TOOLCHAIN_ARGS[@]}"
)

mkdir -p "$WORK"
# ------------------------------------------------------------------ gRPC (+ bundled deps)
if [ ! -d "$WORK/grpc" ]; then
  git clone --depth 1 --branch "$GRPC_TAG" --recurse-submodules --shallow-submodules \
    https://github.com/grpc/grpc.git "$WORK/grpc"
fi
cmake -S "$WORK/grpc" -B "$WORK/build-grpc" "${COMMON_CMAKE[@]}" \
  -DCMAKE_C_FLAGS="$COMMON_FLAGS" \
  -DCMAKE_CXX_FLAGS="$COMMON_FLAGS $NO_RTTI_NO_EXCEPTIONS" \
  -DgRPC_INSTALL=ON -DgRPC_BUILD_TESTS=OFF \
  -DgRPC_ABSL_PROVIDER=module -DABSL_PROPAGATE_CXX_STD=ON -DABSL_ENABLE_INSTALL=ON \
  -DgRPC_PROTOBUF_PROVIDER=module -Dprotobuf_BUILD_TESTS=OFF -Dprotobuf_WITH_ZLIB=OFF \
  -DgRPC_RE2_PROVIDER=module -DRE2_BUILD_TESTING=OFF \
  -DgRPC_CARES_PROVIDER=module -DCARES_STATIC=ON -DCARES_SHARED=OFF \
  -DgRPC_SSL_PROVIDER=package \
    -DOPENSSL_ROOT_DIR="$OPENSSL_ROOT" -DOPENSSL_INCLUDE_DIR="$OPENSSL_INCLUDE" \
    -DOPENSSL_SSL_LIBRARY="$SSL_LIB" -DOPENSSL_CRYPTO_LIBRARY="$CRYPTO_LIB" -DOPENSSL_USE_STATIC_LIBS=ON \
  -DgRPC_ZLIB_PROVIDER=package -DZLIB_INCLUDE_DIR="$ZLIB_INCLUDE" -DZLIB_LIBRARY="$ZLIB_LIB" \
  -DgRPC_BUILD_CODEGEN=ON -DgRPC_BUILD_GRPC_CPP_PLUGIN=ON \
  -DgRPC_BUILD_GRPC_CSHARP_PLUGIN=OFF -DgRPC_BUILD_GRPC_NODE_PLUGIN=OFF \
  -DgRPC_BUILD_GRPC_OBJECTIVE_C_PLUGIN=OFF -DgRPC_BUILD_GRPC_PHP_PLUGIN=OFF \
  -DgRPC_BUILD_GRPC_PYTHON_PLUGIN=OFF -DgRPC_BUILD_GRPC_RUBY_PLUGIN=OFF \
  -DgRPC_BUILD_CSHARP_EXT=OFF
cmake --build "$WORK/build-grpc" --target install --parallel "$JOBS"

# ------------------------------------------------------------------ nlohmann_json (core, header-only)
if [ ! -d "$WORK/json" ]; then
  git clone --depth 1 --branch "$NLOHMANN_JSON_TAG" https://github.com/nlohmann/json.git "$WORK/json"
fi
cmake -S "$WORK/json" -B "$WORK/build-json" "${COMMON_CMAKE[@]}" -DJSON_BuildTests=OFF -DJSON_Install=ON
cmake --build "$WORK/build-json" --target install

# ------------------------------------------------------------------ the GenWorld core
# Built by its own CMakeLists (the one CI tests) against the gRPC just installed; protoc
# and grpc_cpp_plugin come from that install too, so generated code matches the runtime.
cmake -S "$REPO/unreal_plugin/core" -B "$WORK/build-core" "${COMMON_CMAKE[@]}" \
  -DCMAKE_CXX_FLAGS="$COMMON_FLAGS -fno-rtti -DGOOGLE_PROTOBUF_NO_RTTI=1 -DGRPC_ALLOW_EXCEPTIONS=0" \
  -DgRPC_DIR="$PREFIX/lib/cmake/grpc" -DProtobuf_DIR="$PREFIX/lib/cmake/protobuf" \
  -DGRPC_CPP_PLUGIN="$PREFIX/bin/grpc_cpp_plugin"
cmake --build "$WORK/build-core" --target genworld_core genworld_proto --parallel "$JOBS"

# ------------------------------------------------------------------ copy into the module
rm -rf "$MODULE/include" "$MODULE/lib/$PLATFORM"
mkdir -p "$MODULE/include" "$MODULE/lib/$PLATFORM"
cp -R "$PREFIX/include/." "$MODULE/include/"
cp -R "$REPO/unreal_plugin/core/include/." "$MODULE/include/"
# Every archive gRPC installed (grpc, grpc++, gpr, address_sorting, upb*, absl_*, protobuf,
# re2, cares, utf8_range ...), minus what UE supplies or the plugin must not link.
find "$PREFIX/lib" -maxdepth 1 -name '*.a' \
  ! -name 'libprotoc.a' ! -name 'libgrpc_plugin_support.a' ! -name 'libgrpc++_reflection.a' \
  ! -name 'libgrpc_unsecure.a' ! -name 'libgrpc++_unsecure.a' ! -name 'libprotobuf-lite.a' \
  -exec cp {} "$MODULE/lib/$PLATFORM/" \;
cp "$WORK/build-core/libgenworld_core.a" "$WORK/build-core/libgenworld_proto.a" "$MODULE/lib/$PLATFORM/"
echo "GenWorldGrpc ready: $(ls "$MODULE/lib/$PLATFORM" | wc -l) libraries in $MODULE/lib/$PLATFORM"
