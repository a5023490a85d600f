// The one place this module includes the UE-free GenWorld core (unreal_plugin/core).
//
// The core's headers are plain C++17 over the standard library; wrapping them in
// THIRD_PARTY_INCLUDES_START/END silences engine-specific warnings, and UE's `check` /
// `verify` macros are hidden because standard and third-party headers use those names
// as identifiers. world_service.h brings in <grpcpp/grpcpp.h> (grpc::Server/Service), but
// never generated protobuf code: the core keeps that behind a pimpl. Only .cpp files and
// Private/ headers include this file, so no gRPC type reaches the module's Public API.
#pragma once

#include "CoreMinimal.h"

#if PLATFORM_WINDOWS
#include "Windows/AllowWindowsPlatformTypes.h"  // grpcpp pulls in <windows.h>
#endif
THIRD_PARTY_INCLUDES_START
#pragma push_macro("check")
#pragma push_macro("verify")
#undef check
#undef verify

#include "genworld/conventions.h"
#include "genworld/engine_adapter.h"
#include "genworld/navigation.h"
#include "genworld/world_service.h"

#pragma pop_macro("verify")
#pragma pop_macro("check")
THIRD_PARTY_INCLUDES_END
#if PLATFORM_WINDOWS
#include "Windows/HideWindowsPlatformTypes.h"
#endif
