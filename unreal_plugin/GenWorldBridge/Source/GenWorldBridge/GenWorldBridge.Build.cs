// Runtime module: serves the running level as a GenWorld World over gRPC.

using UnrealBuildTool;

public class GenWorldBridge : ModuleRules
{
	public GenWorldBridge(ReadOnlyTargetRules Target) : base(Target)
	{
		PCHUsage = PCHUsageMode.UseExplicitOrSharedPCHs;

		// The UE-free core (unreal_plugin/core) reports bad input and engine failures as
		// C++ exceptions (genworld::InvalidArgumentError, ...), which WorldServiceImpl maps
		// to gRPC statuses. Only the gRPC-thread side of this module throws
		// (FGenWorldGameThreadAdapter); game-thread code returns errors as values. RTTI
		// stays off, matching the prebuilt libraries and the engine.
		bEnableExceptions = true;
		bUseRTTI = false;

		PublicDependencyModuleNames.AddRange(new string[]
		{
			"Core",
			"CoreUObject",
			"Engine",
			"DeveloperSettings",
		});

		PrivateDependencyModuleNames.AddRange(new string[]
		{
			"RenderCore",
			"RHI",
			"Json",
			"GenWorldGrpc",
		});
	}
}
