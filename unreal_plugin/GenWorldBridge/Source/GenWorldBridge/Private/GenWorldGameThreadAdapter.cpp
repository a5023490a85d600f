#include "GenWorldGameThreadAdapter.h"

#include "GenWorldResult.h"
#include "GenWorldUnrealEngineAdapter.h"

#include <chrono>
#include <future>
#include <memory>

namespace
{
	/** Throws the core's exception for a failed result (gRPC thread only; see Build.cs). */
	template <typename T>
	T Unwrap(TGenWorldResult<T>&& Result)
	{
		switch (Result.Error)
		{
		case EGenWorldError::None:
			return MoveTemp(Result.Value);
		case EGenWorldError::InvalidArgument:
			throw genworld::InvalidArgumentError(Result.Message);
		case EGenWorldError::FailedPrecondition:
			throw genworld::FailedPreconditionError(Result.Message);
		case EGenWorldError::Internal:
		default:
			throw std::runtime_error(Result.Message);
		}
	}

	/**
	 * Runs Start(Adapter, Done) on the game thread and waits for Done. The promise is
	 * shared with the work item, so a call that times out leaves nothing dangling: the
	 * game thread completes into a promise nobody reads.
	 */
	template <typename T, typename FStart>
	T RunOnGameThread(const FGenWorldBackendRef& Backend, FStart&& Start)
	{
		auto Promise = std::make_shared<std::promise<TGenWorldResult<T>>>();
		std::future<TGenWorldResult<T>> Future = Promise->get_future();
		// The work item holds the backend too: it may run after a timed-out caller left.
		const bool bQueued = Backend->Queue.Enqueue([BackendPtr = Backend, Promise, Start = MoveTemp(Start)]() mutable
		{
			TGenWorldCompletion<T> Done = [Promise](TGenWorldResult<T>&& Result) { Promise->set_value(MoveTemp(Result)); };
			if (BackendPtr->Adapter == nullptr)
			{
				Done(TGenWorldResult<T>::Fail(EGenWorldError::FailedPrecondition, TEXT("the Unreal world is shutting down")));
				return;
			}
			Start(*BackendPtr->Adapter, MoveTemp(Done));
		});
		if (!bQueued)
		{
			throw genworld::FailedPreconditionError("the Unreal world is shutting down");
		}
		const auto Timeout = std::chrono::duration<double>(Backend->GameThreadTimeoutSeconds);
		if (Future.wait_for(Timeout) != std::future_status::ready)
		{
			throw std::runtime_error("the Unreal game thread did not answer in time (is the level loaded and the game running?)");
		}
		return Unwrap(Future.get());
	}
}

FGenWorldGameThreadAdapter::FGenWorldGameThreadAdapter(FGenWorldBackendRef InBackend)
	: Backend(MoveTemp(InBackend))
{
	// Counted on the game thread so the adapter knows when nobody is stepping any more.
	Backend->Queue.Enqueue([Backend = Backend]() { if (Backend->Adapter) { Backend->Adapter->OpenSession(); } });
}

FGenWorldGameThreadAdapter::~FGenWorldGameThreadAdapter()
{
	if (!bClosed)
	{
		close();
	}
}

genworld::WorldInfo FGenWorldGameThreadAdapter::handshake()
{
	return Backend->Info;  // immutable: no game-thread round trip
}

genworld::Observations FGenWorldGameThreadAdapter::reset(std::optional<int64_t> seed, const std::string& options_json)
{
	return RunOnGameThread<genworld::Observations>(Backend,
		[seed, options_json](FUnrealEngineAdapter& Adapter, TGenWorldCompletion<genworld::Observations>&& Done)
		{
			Adapter.BeginReset(seed, options_json, MoveTemp(Done));
		});
}

genworld::Observations FGenWorldGameThreadAdapter::step(const std::map<std::string, genworld::Action>& actions)
{
	return RunOnGameThread<genworld::Observations>(Backend,
		[actions](FUnrealEngineAdapter& Adapter, TGenWorldCompletion<genworld::Observations>&& Done)
		{
			Adapter.BeginStep(actions, MoveTemp(Done));
		});
}

genworld::Observation FGenWorldGameThreadAdapter::set_pose(const std::string& agent_id, const genworld::Mat4& pose)
{
	return RunOnGameThread<genworld::Observation>(Backend,
		[agent_id, pose](FUnrealEngineAdapter& Adapter, TGenWorldCompletion<genworld::Observation>&& Done)
		{
			Adapter.BeginSetPose(agent_id, pose, MoveTemp(Done));
		});
}

void FGenWorldGameThreadAdapter::close()
{
	bClosed = true;
	// Fire and forget: closing never waits for the game thread (the server may be
	// shutting down from the game thread itself).
	Backend->Queue.Enqueue([Backend = Backend]() { if (Backend->Adapter) { Backend->Adapter->CloseSession(); } });
}
