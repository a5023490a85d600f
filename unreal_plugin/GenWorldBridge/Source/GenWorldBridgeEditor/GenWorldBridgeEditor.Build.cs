// Editor module: exports Level Sequence camera trajectories in GenWorld's dataset layout.

using UnrealBuildTool;

public class GenWorldBridgeEditor : ModuleRules
{
	public GenWorldBridgeEditor(ReadOnlyTargetRules Target) : base(Target)
	{
		PCHUsage = PCHUsageMode.UseExplicitOrSharedPCHs;

		PrivateDependencyModuleNames.AddRange(new string[]
		{
			"Core", "CoreUObject", "Engine", "Slate", "SlateCore", "ToolMenus", "UnrealEd",
			"ContentBrowser", "DesktopPlatform", "Json", "CinematicCamera",
			"LevelSequence", "MovieScene", "MovieSceneTracks",
			"GenWorldBridge",
		});
	}
}
