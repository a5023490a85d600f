#include "GenWorldServer.h"

#include "HAL/PlatformTime.h"


DEFINE_LOG_CATEGORY_STATIC(LogGenWorldServer, Log, All);

TUniquePtr<FGenWorldServer> FGenWorldServer::Start(UGameInstance* GameInstance, FGenWorldAdapterConfig Config,
	const FGenWorldServerOptions& Options, FString& OutError)
{
	check(IsInGameThread());
	TUniquePtr<FGenWorldServer> Server(new FGenWorldServer());
	Server->Backend->Info = Config.ToWorldInfo();
	Server->Backend->GameThreadTimeoutSeconds = Options.GameThreadTimeoutSeconds;
	Server->Adapter = MakeUnique<FUnrealEngineAdapter>(GameInstance, MoveTemp(Config));
	Server->Backend->Adapter = Server->Adapter.Get();

	genworld::ServiceOptions ServiceOptions;
	ServiceOptions.server_name = "genworld-unreal";
	ServiceOptions.token = TCHAR_TO_UTF8(*Options.Token);
	// Every session shares the one level: a factory call only makes a game-thread proxy.
	FGenWorldBackendRef Backend = Server->Backend;
	Server->Service = std::make_unique<genworld::WorldServiceImpl>(
		[Backend]() -> std::unique_ptr<genworld::EngineAdapter> { return std::make_unique<FGenWorldGameThreadAdapter>(Backend); },
		ServiceOptions);

	const std::string Address = std::string(TCHAR_TO_UTF8(*Options.BindAddress)) + ":" + std::to_string(Options.Port);
	int SelectedPort = 0;
	Server->GrpcServer = genworld::start_server(*Server->Service, Address, &SelectedPort);
	if (!Server->GrpcServer)
	{
		OutError = FString::Printf(TEXT("could not bind %s"), UTF8_TO_TCHAR(Address.c_str()));
		Server->Backend->Adapter = nullptr;
		return nullptr;
	}
	Server->Port = SelectedPort;
	UE_LOG(LogGenWorldServer, Display, TEXT("GenWorld WorldService listening on %s:%d"), *Options.BindAddress, SelectedPort);
	return Server;
}

FGenWorldServer::~FGenWorldServer()
{
	Stop();
}

void FGenWorldServer::Pump(double BudgetSeconds, double IdleWaitSeconds)
{
	check(IsInGameThread());
	const double Deadline = FPlatformTime::Seconds() + BudgetSeconds;
	Adapter->Tick();
	// One operation at a time: a Step in flight holds the queue until its frames are
	// captured, which is what makes concurrent sessions on one world deterministic.
	while (!Adapter->IsBusy())
	{
		const double Remaining = Deadline - FPlatformTime::Seconds();
		if (Remaining <= 0.0)
		{
			break;
		}
		FGenWorldRequestQueue::FWork Work;
		if (!Backend->Queue.TryDequeue(Work))
		{
			// Idle: wait briefly for the next request instead of ending the frame, so a
			// client's request is picked up in microseconds, not one frame later.
			if (IdleWaitSeconds <= 0.0 || !Backend->Queue.WaitForWork(FMath::Min(IdleWaitSeconds, Remaining)) || !Backend->Queue.TryDequeue(Work))
			{
				break;
			}
		}
		Work();
		Adapter->Tick();  // a Reset/SetPose readback may already be done
	}
}

void FGenWorldServer::Stop()
{
	check(IsInGameThread());
	// 1. Refuse new work; 2. fail the operation in flight; 3. run what is queued so every
	//    waiting gRPC thread is answered (the adapter, shut down, fails each at once);
	// 4. only then shut gRPC down: Shutdown() waits for handlers, which are no longer
	//    blocked on the game thread (this thread).
	Backend->Queue.Close();
	if (Adapter)
	{
		Adapter->Shutdown(TEXT("the GenWorld server is stopping"));
	}
	FGenWorldRequestQueue::FWork Work;
	while (Backend->Queue.TryDequeue(Work))
	{
		Work();
	}
	Backend->Adapter = nullptr;
	if (GrpcServer)
	{
		// Handlers still racing to enqueue see the closed queue and fail immediately.
		GrpcServer->Shutdown();
		GrpcServer.reset();
	}
	if (Service)
	{
		Service->close_all();
		Service.reset();
	}
	while (Backend->Queue.TryDequeue(Work))
	{
		Work();
	}
	Adapter.Reset();
}
