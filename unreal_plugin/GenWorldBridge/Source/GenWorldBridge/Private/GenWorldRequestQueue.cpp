#include "GenWorldRequestQueue.h"

#include "HAL/PlatformProcess.h"

namespace
{
	constexpr double MillisecondsPerSecond = 1000.0;
}

FGenWorldRequestQueue::FGenWorldRequestQueue()
	: WorkArrived(FPlatformProcess::GetSynchEventFromPool(/*bIsManualReset=*/false))
{
}

FGenWorldRequestQueue::~FGenWorldRequestQueue()
{
	FPlatformProcess::ReturnSynchEventToPool(WorkArrived);
}

bool FGenWorldRequestQueue::Enqueue(FWork&& Work)
{
	if (!bOpen.load(std::memory_order_acquire))
	{
		return false;
	}
	Queue.Enqueue(MoveTemp(Work));
	WorkArrived->Trigger();
	return true;
}

bool FGenWorldRequestQueue::TryDequeue(FWork& OutWork)
{
	return Queue.Dequeue(OutWork);
}

bool FGenWorldRequestQueue::WaitForWork(double Seconds)
{
	if (!Queue.IsEmpty())
	{
		return true;
	}
	const uint32 WaitMs = uint32(FMath::Max(0.0, Seconds) * MillisecondsPerSecond);
	return WorkArrived->Wait(WaitMs) || !Queue.IsEmpty();
}

void FGenWorldRequestQueue::Close()
{
	bOpen.store(false, std::memory_order_release);
	WorkArrived->Trigger();
}
