// The gRPC side of the subsystem, kept out of the public header so no gRPC type leaks:
// the core's WorldServiceImpl + grpc::Server, the shared backend (request queue), and the
// game-thread adapter the queue's work runs against.
#pragma once

#include "CoreMinimal.h"
#include "GenWorldGameThreadAdapter.h"
#include "GenWorldUnrealEngineAdapter.h"

struct FGenWorldServerOptions
{
	FString BindAddress;
	int32 Port = 0;
	FString Token;
	double GameThreadTimeoutSeconds = 0.0;
};

class FGenWorldServer
{
public:
	/** Game thread. Binds and starts serving; nullptr (with OutError) if binding failed. */
	static TUniquePtr<FGenWorldServer> Start(UGameInstance* GameInstance, FGenWorldAdapterConfig Config,
		const FGenWorldServerOptions& Options, FString& OutError);
	~FGenWorldServer();

	/** Game thread: runs queued requests until the budget is spent or one is in flight. */
	void Pump(double BudgetSeconds, double IdleWaitSeconds);

	int32 GetPort() const { return Port; }

private:
	FGenWorldServer() = default;
	void Stop();

	FGenWorldBackendRef Backend = MakeShared<FGenWorldBackend, ESPMode::ThreadSafe>();
	TUniquePtr<FUnrealEngineAdapter> Adapter;
	std::unique_ptr<genworld::WorldServiceImpl> Service;
	std::unique_ptr<grpc::Server> GrpcServer;
	int32 Port = 0;
};
