// How game-thread operations report success or failure without exceptions: the
// gRPC-thread side (FGenWorldGameThreadAdapter) turns the error kind into the core's
// exception type, which WorldServiceImpl maps to a gRPC status.
#pragma once

#include "CoreMinimal.h"

#include <string>

enum class EGenWorldError : uint8
{
	None,
	InvalidArgument,     // INVALID_ARGUMENT: bad agent id, unusable pose, bad options
	FailedPrecondition,  // FAILED_PRECONDITION: step before reset, no world loaded, shutting down
	Internal,            // INTERNAL: the engine failed
};

template <typename T>
struct TGenWorldResult
{
	T Value{};
	EGenWorldError Error = EGenWorldError::None;
	std::string Message;

	static TGenWorldResult Ok(T&& InValue)
	{
		TGenWorldResult Result;
		Result.Value = MoveTemp(InValue);
		return Result;
	}

	static TGenWorldResult Fail(EGenWorldError Kind, const FString& InMessage)
	{
		TGenWorldResult Result;
		Result.Error = Kind;
		Result.Message = TCHAR_TO_UTF8(*InMessage);
		return Result;
	}
};

template <typename T>
using TGenWorldCompletion = TUniqueFunction<void(TGenWorldResult<T>&&)>;
