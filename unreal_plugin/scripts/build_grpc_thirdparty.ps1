# Builds the static libraries of the GenWorldGrpc ThirdParty module on Windows (Win64,
# MSVC): gRPC from a pinned tag with its bundled protobuf/abseil/upb/re2/c-ares, and the
# GenWorld core against them, then copies headers and .lib files into
#   unreal_plugin\GenWorldBridge\Source\ThirdParty\GenWorldGrpc\include\
#   unreal_plugin\GenWorldBridge\Source\ThirdParty\GenWorldGrpc\lib\Win64\
#
# Run from a "x64 Native Tools Command Prompt for VS 2022" PowerShell:
#   $env:UE_ROOT = "C:\Program Files\Epic Games\UE_5.3"
#   powershell -ExecutionPolicy Bypass -File unreal_plugin\scripts\build_grpc_thirdparty.ps1
#
# Flag rationale is in build_grpc_thirdparty.sh. Windows specifics:
# - /GR- (no RTTI) and no /EHsc for gRPC/protobuf/abseil (_HAS_EXCEPTIONS=0); the core is
#   built /GR- but with /EHsc (it uses exceptions internally; GenWorldBridge enables them).
# - /MD (CMAKE_MSVC_RUNTIME_LIBRARY=MultiThreadedDLL): UE links the release DLL CRT even in
#   Debug editor builds; mixing /MT archives into a /MD module fails to link.
# - /Zc:__cplusplus so abseil detects C++20 like UE's compiler invocation does.
param(
    [string]$GrpcTag = $(if ($env:GRPC_TAG) { $env:GRPC_TAG } else { "v1.62.1" }),
    [string]$JsonTag = "v3.11.3"
)
$ErrorActionPreference = "Stop"

if (-not $env:UE_ROOT) { throw "set UE_ROOT to the Unreal Engine root (the folder that contains Engine\)" }
$Repo = (Resolve-Path "$PSScriptRoot\..\..").Path
$Module = "$Repo\unreal_plugin\GenWorldBridge\Source\ThirdParty\GenWorldGrpc"
$Work = if ($env:WORK) { $env:WORK } else { "$Repo\unreal_plugin\build\thirdparty" }
$Prefix = "$Work\install"
$ThirdParty = "$env:UE_ROOT\Engine\Source\ThirdParty"

function Newest-Dir($Path) { (Get-ChildItem $Path -Directory | Sort-Object Name | Select-Object -Last 1).FullName }
function First-File($Root, $Filter, $Name) {
    $f = Get-ChildItem $Root -Recurse -Filter $Name | Where-Object { $_.FullName -like $Filter } | Sort-Object FullName | Select-Object -First 1
    if (-not $f) { throw "engine file $Name not found under $Root (set UE_OPENSSL_ROOT / UE_ZLIB_ROOT)" }
    $f.FullName
}
function Invoke-Checked { & $args[0] $args[1..($args.Count - 1)]; if ($LASTEXITCODE -ne 0) { throw "$($args[0]) failed ($LASTEXITCODE)" } }

# ------------------------------------------------------------------ engine OpenSSL / zlib
$OpenSslRoot = if ($env:UE_OPENSSL_ROOT) { $env:UE_OPENSSL_ROOT } else { Newest-Dir "$ThirdParty\OpenSSL" }
$ZlibRoot = if ($env:UE_ZLIB_ROOT) { $env:UE_ZLIB_ROOT } else { Newest-Dir "$ThirdParty\zlib" }
$SslLib = First-File $OpenSslRoot "*Win64*Release*" "libssl.lib"
$CryptoLib = First-File $OpenSslRoot "*Win64*Release*" "libcrypto.lib"
$OpenSslInclude = Split-Path (Split-Path (First-File $OpenSslRoot "*Win64*" "ssl.h"))
$ZlibLib = First-File $ZlibRoot "*Win64*Release*" "zlibstatic.lib"
$ZlibInclude = Split-Path (First-File $ZlibRoot "*" "zlib.h")
Write-Host "OpenSSL: $SslLib"; Write-Host "zlib:    $ZlibLib"

$NoRttiNoExceptions = "/GR- /EHs-c- /D_HAS_EXCEPTIONS=0 /DGOOGLE_PROTOBUF_NO_RTTI=1 /DPROTOBUF_USE_EXCEPTIONS=0 /DGRPC_ALLOW_EXCEPTIONS=0"
$Common = @(
    "-G", "Ninja",
    "-DCMAKE_BUILD_TYPE=Release",
    "-DCMAKE_INSTALL_PREFIX=$Prefix",
    "-DCMAKE_PREFIX_PATH=$Prefix",
    "-DCMAKE_CXX_STANDARD=20",
    "-DCMAKE_POSITION_INDEPENDENT_CODE=ON",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DCMAKE_MSVC_RUNTIME_LIBRARY=MultiThreadedDLL",
    "-DCMAKE_POLICY_DEFAULT_CMP0091=NEW"
)

New-Item -ItemType Directory -Force $Work | Out-Null
# ------------------------------------------------------------------ gRPC (+ bundled deps)
if (-not (Test-Path "$Work\grpc")) {
    Invoke-Checked git clone --depth 1 --branch $GrpcTag --recurse-submodules --shallow-submodules https://github.com/grpc/grpc.git "$Work\grpc"
}
Invoke-Checked cmake -S "$Work\grpc" -B "$Work\build-grpc" @Common `
    "-DCMAKE_CXX_FLAGS=/Zc:__cplusplus /utf-8 $NoRttiNoExceptions" `
    -DgRPC_INSTALL=ON -DgRPC_BUILD_TESTS=OFF `
    -DgRPC_ABSL_PROVIDER=module -DABSL_PROPAGATE_CXX_STD=ON -DABSL_ENABLE_INSTALL=ON `
    -DgRPC_PROTOBUF_PROVIDER=module -Dprotobuf_BUILD_TESTS=OFF -Dprotobuf_WITH_ZLIB=OFF -Dprotobuf_MSVC_STATIC_RUNTIME=OFF `
    -DgRPC_RE2_PROVIDER=module -DRE2_BUILD_TESTING=OFF `
    -DgRPC_CARES_PROVIDER=module -DCARES_STATIC=ON -DCARES_SHARED=OFF -DCARES_MSVC_STATIC_RUNTIME=OFF `
    -DgRPC_SSL_PROVIDER=package "-DOPENSSL_ROOT_DIR=$OpenSslRoot" "-DOPENSSL_INCLUDE_DIR=$OpenSslInclude" `
    "-DOPENSSL_SSL_LIBRARY=$SslLib" "-DOPENSSL_CRYPTO_LIBRARY=$CryptoLib" -DOPENSSL_USE_STATIC_LIBS=ON `
    -DgRPC_ZLIB_PROVIDER=package "-DZLIB_INCLUDE_DIR=$ZlibInclude" "-DZLIB_LIBRARY=$ZlibLib" `
    -DgRPC_BUILD_CODEGEN=ON -DgRPC_BUILD_GRPC_CPP_PLUGIN=ON `
    -DgRPC_BUILD_GRPC_CSHARP_PLUGIN=OFF -DgRPC_BUILD_GRPC_NODE_PLUGIN=OFF -DgRPC_BUILD_GRPC_OBJECTIVE_C_PLUGIN=OFF `
    -DgRPC_BUILD_GRPC_PHP_PLUGIN=OFF -DgRPC_BUILD_GRPC_PYTHON_PLUGIN=OFF -DgRPC_BUILD_GRPC_RUBY_PLUGIN=OFF -DgRPC_BUILD_CSHARP_EXT=OFF
Invoke-Checked cmake --build "$Work\build-grpc" --target install --parallel

# ------------------------------------------------------------------ nlohmann_json (header-only)
if (-not (Test-Path "$Work\json")) {
    Invoke-Checked git clone --depth 1 --branch $JsonTag https://github.com/nlohmann/json.git "$Work\json"
}
Invoke-Checked cmake -S "$Work\json" -B "$Work\build-json" @Common -DJSON_BuildTests=OFF -DJSON_Install=ON
Invoke-Checked cmake --build "$Work\build-json" --target install

# ------------------------------------------------------------------ the GenWorld core
Invoke-Checked cmake -S "$Repo\unreal_plugin\core" -B "$Work\build-core" @Common `
    "-DCMAKE_CXX_FLAGS=/Zc:__cplusplus /utf-8 /EHsc /GR- /DGOOGLE_PROTOBUF_NO_RTTI=1 /DGRPC_ALLOW_EXCEPTIONS=0" `
    "-DgRPC_DIR=$Prefix\lib\cmake\grpc" "-DProtobuf_DIR=$Prefix\lib\cmake\protobuf" `
    "-DGRPC_CPP_PLUGIN=$Prefix\bin\grpc_cpp_plugin.exe"
Invoke-Checked cmake --build "$Work\build-core" --target genworld_core genworld_proto --parallel

# ------------------------------------------------------------------ copy into the module
Remove-Item -Recurse -Force "$Module\include", "$Module\lib\Win64" -ErrorAction SilentlyContinue
New-Item -ItemType Directory -Force "$Module\include", "$Module\lib\Win64" | Out-Null
Copy-Item -Recurse "$Prefix\include\*" "$Module\include\"
Copy-Item -Recurse "$Repo\unreal_plugin\core\include\*" "$Module\include\"
$Skip = @("libprotoc.lib", "grpc_plugin_support.lib", "grpc++_reflection.lib", "grpc_unsecure.lib", "grpc++_unsecure.lib", "libprotobuf-lite.lib")
Get-ChildItem "$Prefix\lib" -Filter *.lib | Where-Object { $Skip -notcontains $_.Name } | Copy-Item -Destination "$Module\lib\Win64\"
Copy-Item "$Work\build-core\genworld_core.lib", "$Work\build-core\genworld_proto.lib" "$Module\lib\Win64\"
Write-Host "GenWorldGrpc ready: $((Get-ChildItem "$Module\lib\Win64").Count) libraries in $Module\lib\Win64"
