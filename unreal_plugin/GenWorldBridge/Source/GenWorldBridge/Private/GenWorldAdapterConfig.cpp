// FGenWorldAdapterConfig: project settings -> what the Unreal adapter serves (handshake info,
// limits). Kept apart from the adapter's game-thread lifecycle in GenWorldUnrealEngineAdapter.cpp.
#include "GenWorldUnrealEngineAdapter.h"

#include "GenWorldSettings.h"

FGenWorldAdapterConfig FGenWorldAdapterConfig::FromSettings(const UGenWorldSettings& Settings, const FString& WorldName, double FixedDeltaSeconds)
{
	FGenWorldAdapterConfig Config;
	Config.WorldName = WorldName;
	for (int32 Index = 0; Index < Settings.NumAgents; ++Index)
	{
		Config.AgentIds.Add(FString::Printf(TEXT("agent_%d"), Index));  // bridge's agent naming
	}
	Config.Width = Settings.Width;
	Config.Height = Settings.Height;
	Config.HorizontalFovDeg = Settings.HorizontalFovDeg;
	Config.AgentRadiusCm = Settings.AgentRadiusCm;
	Config.MaxDepthMeters = Settings.MaxDepthMeters;
	Config.FixedDeltaSeconds = FixedDeltaSeconds;
	Config.NavLimits.max_translation = Settings.NavMaxTranslationMeters;
	Config.NavLimits.max_rotation = FMath::DegreesToRadians(double(Settings.NavMaxRotationDeg));
	Config.NavLimits.max_pitch = FMath::DegreesToRadians(double(Settings.NavMaxPitchDeg));
	Config.HandMaxTranslationMeters = Settings.HandMaxTranslationMeters;
	Config.HandMaxRotationRad = FMath::DegreesToRadians(double(Settings.HandMaxRotationDeg));
	Config.HandTargetClass = Settings.HandTargetClass;
	Config.bHands = !Settings.HandTargetClass.IsNull();
	return Config;
}

genworld::WorldInfo FGenWorldAdapterConfig::ToWorldInfo() const
{
	genworld::WorldInfo Info;
	Info.name = TCHAR_TO_UTF8(*WorldName);
	Info.capabilities = {genworld::kCapRgb, genworld::kCapDepth, genworld::kCapNavKeys, genworld::kCapNavContinuous,
						 genworld::kCapSetPose, genworld::kCapCollision, genworld::kCapStepStream};
	if (bHands)
	{
		Info.capabilities.push_back(genworld::kCapHands);
	}
	Info.agent_ids.clear();
	for (const FString& Id : AgentIds)
	{
		Info.agent_ids.push_back(TCHAR_TO_UTF8(*Id));
	}
	Info.width = uint32(Width);
	Info.height = uint32(Height);
	return Info;
}

