// The hand-off between gRPC threads and the game thread.
//
// gRPC's synchronous-server threads (inside the core's WorldServiceImpl) never touch a
// UObject: they push a unit of work here and block on a future. The game thread pops work
// in UGenWorldSubsystem::Tick, within a per-frame time budget, and runs it. A work item
// may finish over several frames (a Step waits for one world tick and a GPU readback), so
// completion is reported through a callback, not a return value.
#pragma once

#include "CoreMinimal.h"
#include "Containers/Queue.h"
#include "HAL/Event.h"

#include <atomic>

class FGenWorldRequestQueue
{
public:
	using FWork = TUniqueFunction<void()>;

	FGenWorldRequestQueue();
	~FGenWorldRequestQueue();

	/** Any thread. False once Close() was called (the work is dropped, not run). */
	bool Enqueue(FWork&& Work);

	/** Game thread. Pops the oldest work item, if any. */
	bool TryDequeue(FWork& OutWork);

	/** Game thread. Sleeps until work arrives or Seconds pass; true if work may be waiting. */
	bool WaitForWork(double Seconds);

	/** Refuses further work and wakes a waiting game thread. Queued work stays to be drained. */
	void Close();

private:
	TQueue<FWork, EQueueMode::Mpsc> Queue;
	FEvent* WorkArrived = nullptr;
	std::atomic<bool> bOpen{true};
};
