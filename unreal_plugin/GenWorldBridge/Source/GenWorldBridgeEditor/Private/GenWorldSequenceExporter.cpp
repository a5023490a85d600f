#include "GenWorldSequenceExporter.h"

#include "CineCameraActor.h"
#include "CineCameraComponent.h"
#include "Dom/JsonObject.h"
#include "GenWorldConventions.h"
#include "GenWorldNpyWriter.h"
#include "HAL/FileManager.h"
#include "LevelSequence.h"
#include "Misc/DateTime.h"
#include "Misc/FileHelper.h"
#include "Misc/Paths.h"
#include "MovieScene.h"
#include "Sections/MovieScene3DTransformSection.h"
#include "Sections/MovieSceneCameraCutSection.h"
#include "Sections/MovieSceneFloatSection.h"
#include "Serialization/JsonSerializer.h"
#include "Serialization/JsonWriter.h"
#include "Tracks/MovieScene3DTransformTrack.h"
#include "Tracks/MovieSceneCameraCutTrack.h"
#include "Tracks/MovieSceneFloatTrack.h"

namespace
{
	// Names shared with bridge/trajectory_format.py.
	const TCHAR* const FormatName = TEXT("genworld-trajectories");
	constexpr int32 FormatVersion = 1;
	const TCHAR* const EpisodeName = TEXT("ep_000000");
	const TCHAR* const AgentId = TEXT("agent_0");
	const FName FocalLengthProperty(TEXT("CurrentFocalLength"));

	// FMovieScene3DTransformSection's double channels: location XYZ, rotation XYZ
	// (= roll, pitch, yaw), scale XYZ.
	constexpr int32 LocationChannel = 0;
	constexpr int32 RollChannel = 3;
	constexpr int32 PitchChannel = 4;
	constexpr int32 YawChannel = 5;
	constexpr int32 TransformChannelCount = 9;
	// UCineCameraComponent's default horizontal FOV, for a camera the exporter cannot resolve.
	constexpr double FallbackHorizontalFovDeg = 90.0;

	struct FCameraTrack
	{
		FGuid Binding;
		UMovieScene3DTransformSection* Transform = nullptr;
		UMovieSceneFloatSection* FocalLength = nullptr;  // optional, animated focal length
		UCineCameraComponent* Camera = nullptr;          // template or level instance, for the filmback
	};

	UCineCameraComponent* ResolveCamera(ULevelSequence& Sequence, UMovieScene& MovieScene, const FGuid& Binding, UWorld* World)
	{
		if (const FMovieSceneSpawnable* Spawnable = MovieScene.FindSpawnable(Binding))
		{
			if (const ACineCameraActor* Template = Cast<ACineCameraActor>(Spawnable->GetObjectTemplate()))
			{
				return Template->GetCineCameraComponent();
			}
		}
		if (World != nullptr)
		{
			TArray<UObject*, TInlineAllocator<1>> Objects;
			Sequence.LocateBoundObjects(Binding, World, Objects);
			for (UObject* Object : Objects)
			{
				if (const ACineCameraActor* Actor = Cast<ACineCameraActor>(Object))
				{
					return Actor->GetCineCameraComponent();
				}
			}
		}
		return nullptr;
	}

	bool FindCameraTrack(ULevelSequence& Sequence, UMovieScene& MovieScene, const FGuid& Binding, UWorld* World, FCameraTrack& Out)
	{
		const UMovieScene3DTransformTrack* Track = MovieScene.FindTrack<UMovieScene3DTransformTrack>(Binding);
		if (Track == nullptr || Track->GetAllSections().IsEmpty())
		{
			return false;
		}
		Out.Binding = Binding;
		Out.Transform = Cast<UMovieScene3DTransformSection>(Track->GetAllSections()[0]);
		Out.Camera = ResolveCamera(Sequence, MovieScene, Binding, World);
		// The focal length is animated on the camera component, a child binding of the actor.
		for (int32 Index = 0; Index < MovieScene.GetPossessableCount(); ++Index)
		{
			const FMovieScenePossessable& Child = MovieScene.GetPossessable(Index);
			if (Child.GetParent() != Binding)
			{
				continue;
			}
			for (const UMovieSceneTrack* ChildTrack : MovieScene.FindTracks(UMovieSceneFloatTrack::StaticClass(), Child.GetGuid()))
			{
				const UMovieSceneFloatTrack* Float = Cast<UMovieSceneFloatTrack>(ChildTrack);
				if (Float != nullptr && Float->GetPropertyName() == FocalLengthProperty && !Float->GetAllSections().IsEmpty())
				{
					Out.FocalLength = Cast<UMovieSceneFloatSection>(Float->GetAllSections()[0]);
				}
			}
		}
		return Out.Transform != nullptr;
	}

	double EvaluateChannel(const FMovieSceneDoubleChannel& Channel, FFrameTime Time)
	{
		double Value = Channel.GetDefault().Get(0.0);
		Channel.Evaluate(Time, Value);
		return Value;
	}

	bool SampleCamera(const FCameraTrack& Track, FFrameTime Time, FVector& OutLocation, FRotator& OutRotation, double& OutHorizontalFovDeg)
	{
		const TArrayView<FMovieSceneDoubleChannel*> Channels = Track.Transform->GetChannelProxy().GetChannels<FMovieSceneDoubleChannel>();
		if (Channels.Num() < TransformChannelCount)
		{
			return false;
		}
		OutLocation = FVector(EvaluateChannel(*Channels[LocationChannel], Time), EvaluateChannel(*Channels[LocationChannel + 1], Time),
			EvaluateChannel(*Channels[LocationChannel + 2], Time));
		OutRotation = FRotator(EvaluateChannel(*Channels[PitchChannel], Time), EvaluateChannel(*Channels[YawChannel], Time),
			EvaluateChannel(*Channels[RollChannel], Time));

		OutHorizontalFovDeg = Track.Camera ? Track.Camera->GetHorizontalFieldOfView() : FallbackHorizontalFovDeg;
		if (Track.FocalLength != nullptr && Track.Camera != nullptr)
		{
			float FocalLengthMm = Track.Camera->CurrentFocalLength;
			Track.FocalLength->GetChannel().Evaluate(Time, FocalLengthMm);
			// Horizontal FOV of a pinhole with the camera's sensor width (both in mm).
			OutHorizontalFovDeg = FMath::RadiansToDegrees(2.0 * FMath::Atan(Track.Camera->Filmback.SensorWidth / (2.0 * FocalLengthMm)));
		}
		return true;
	}

	bool WriteJson(const FString& Path, const TSharedRef<FJsonObject>& Object)
	{
		FString Text;
		const TSharedRef<TJsonWriter<>> Writer = TJsonWriterFactory<>::Create(&Text);
		return FJsonSerializer::Serialize(Object, Writer) && FFileHelper::SaveStringToFile(Text, *Path, FFileHelper::EEncodingOptions::ForceUTF8WithoutBOM);
	}

	TArray<TSharedPtr<FJsonValue>> JsonNumbers(std::initializer_list<double> Values)
	{
		TArray<TSharedPtr<FJsonValue>> Out;
		for (double Value : Values)
		{
			Out.Add(MakeShared<FJsonValueNumber>(Value));
		}
		return Out;
	}

	TArray<TSharedPtr<FJsonValue>> JsonStrings(std::initializer_list<const TCHAR*> Values)
	{
		TArray<TSharedPtr<FJsonValue>> Out;
		for (const TCHAR* Value : Values)
		{
			Out.Add(MakeShared<FJsonValueString>(Value));
		}
		return Out;
	}
}

bool GenWorldSequenceExporter::Export(ULevelSequence& Sequence, const FGenWorldExportOptions& Options, FString& OutError)
{
	UMovieScene* MovieScene = Sequence.GetMovieScene();
	if (MovieScene == nullptr)
	{
		OutError = TEXT("the sequence has no movie scene");
		return false;
	}

	// Camera per cut section; without a cut track, the first camera with a transform track.
	struct FCut
	{
		TRange<FFrameNumber> Range;
		FCameraTrack Track;
	};
	TArray<FCut> Cuts;
	if (const UMovieSceneCameraCutTrack* CutTrack = Cast<UMovieSceneCameraCutTrack>(MovieScene->GetCameraCutTrack()))
	{
		for (UMovieSceneSection* Section : CutTrack->GetAllSections())
		{
			const UMovieSceneCameraCutSection* Cut = Cast<UMovieSceneCameraCutSection>(Section);
			FCameraTrack Track;
			if (Cut != nullptr && FindCameraTrack(Sequence, *MovieScene, Cut->GetCameraBindingID().GetGuid(), Options.World, Track))
			{
				Cuts.Add({Cut->GetRange(), Track});
			}
		}
	}
	if (Cuts.IsEmpty())
	{
		for (int32 Index = 0; Index < MovieScene->GetSpawnableCount() + MovieScene->GetPossessableCount() && Cuts.IsEmpty(); ++Index)
		{
			const FGuid Guid = Index < MovieScene->GetSpawnableCount() ? MovieScene->GetSpawnable(Index).GetGuid()
				: MovieScene->GetPossessable(Index - MovieScene->GetSpawnableCount()).GetGuid();
			FCameraTrack Track;
			if (FindCameraTrack(Sequence, *MovieScene, Guid, Options.World, Track) && Track.Camera != nullptr)
			{
				Cuts.Add({TRange<FFrameNumber>::All(), Track});
			}
		}
	}
	if (Cuts.IsEmpty())
	{
		OutError = TEXT("no camera with a transform track (add a Camera Cut track or a CineCameraActor with keys)");
		return false;
	}

	// One sample per display frame of the playback range.
	const FFrameRate TickResolution = MovieScene->GetTickResolution();
	const FFrameRate DisplayRate = MovieScene->GetDisplayRate();
	const TRange<FFrameNumber> Playback = MovieScene->GetPlaybackRange();
	const FFrameNumber StartTick = Playback.GetLowerBoundValue();
	const FFrameNumber EndTick = Playback.GetUpperBoundValue();
	const int32 FirstFrame = FFrameRate::TransformTime(FFrameTime(StartTick), TickResolution, DisplayRate).FloorToFrame().Value;
	const int32 EndFrame = FFrameRate::TransformTime(FFrameTime(EndTick), TickResolution, DisplayRate).FloorToFrame().Value;
	const int32 NumFrames = EndFrame - FirstFrame;
	if (NumFrames <= 0)
	{
		OutError = TEXT("the playback range is empty");
		return false;
	}

	constexpr int32 PoseSize = 16;
	constexpr int32 KSize = 9;
	TArray<double> Poses, Ks, SimTimes;
	TArray<int64> FrameIds;
	Poses.Reserve(NumFrames * PoseSize);
	Ks.Reserve(NumFrames * KSize);
	for (int32 Frame = 0; Frame < NumFrames; ++Frame)
	{
		const FFrameTime Time = FFrameRate::TransformTime(FFrameTime(FirstFrame + Frame), DisplayRate, TickResolution);
		const FCut* Active = Cuts.FindByPredicate([&Time](const FCut& Cut) { return Cut.Range.Contains(Time.FrameNumber); });
		if (Active == nullptr)
		{
			Active = &Cuts.Last();  // past the last cut: hold its camera, as Sequencer does
		}
		FVector Location;
		FRotator Rotation;
		double FovDeg = 0.0;
		if (!SampleCamera(Active->Track, Time, Location, Rotation, FovDeg))
		{
			OutError = TEXT("a camera transform section has an unexpected channel layout");
			return false;
		}
		const FGenWorldPose Pose = GenWorldConventions::UeCameraToPose(Location, Rotation);
		const FGenWorldIntrinsics K = GenWorldConventions::IntrinsicsFromHorizontalFov(Options.Width, Options.Height, FovDeg);
		for (int32 Row = 0; Row < 4; ++Row)
		{
			for (int32 Col = 0; Col < 4; ++Col)
			{
				Poses.Add(Pose.M[Row][Col]);
			}
		}
		for (int32 Row = 0; Row < 3; ++Row)
		{
			for (int32 Col = 0; Col < 3; ++Col)
			{
				Ks.Add(K.M[Row][Col]);
			}
		}
		FrameIds.Add(Frame);
		SimTimes.Add(DisplayRate.AsSeconds(FFrameTime(Frame)));
	}

	// Written into a temp directory and renamed, like the recorder, so a half-written
	// episode never sits under its final name; the manifest is written last.
	const FString EpisodesDir = FPaths::Combine(Options.OutputDirectory, TEXT("episodes"));
	const FString TempDir = FPaths::Combine(EpisodesDir, FString::Printf(TEXT(".tmp-%s-unreal"), EpisodeName));
	const FString FinalDir = FPaths::Combine(EpisodesDir, EpisodeName);
	IFileManager& Files = IFileManager::Get();
	Files.DeleteDirectory(*TempDir, false, true);
	Files.DeleteDirectory(*FinalDir, false, true);
	if (!Files.MakeDirectory(*TempDir, true))
	{
		OutError = FString::Printf(TEXT("cannot create %s"), *TempDir);
		return false;
	}
	const int64 T = NumFrames;
	constexpr int64 A = 1;
	bool bOk = GenWorldNpy::WriteFloat64(FPaths::Combine(TempDir, TEXT("pose.npy")), {T, A, 4, 4}, Poses)
		&& GenWorldNpy::WriteFloat64(FPaths::Combine(TempDir, TEXT("K.npy")), {T, A, 3, 3}, Ks)
		&& GenWorldNpy::WriteInt64(FPaths::Combine(TempDir, TEXT("frame_id.npy")), {T, A}, FrameIds)
		&& GenWorldNpy::WriteFloat64(FPaths::Combine(TempDir, TEXT("sim_time.npy")), {T, A}, SimTimes);

	const double Now = double(FDateTime::UtcNow().ToUnixTimestamp());
	const TArray<TSharedPtr<FJsonValue>> Fields = JsonStrings({TEXT("pose"), TEXT("K"), TEXT("frame_id"), TEXT("sim_time")});
	const TArray<TSharedPtr<FJsonValue>> Resolution = JsonNumbers({double(Options.Height), double(Options.Width)});
	const TArray<TSharedPtr<FJsonValue>> Agents = JsonStrings({AgentId});

	TSharedRef<FJsonObject> WorldInfo = MakeShared<FJsonObject>();
	WorldInfo->SetStringField(TEXT("name"), FString::Printf(TEXT("unreal-sequence:%s"), *Sequence.GetPathName()));
	WorldInfo->SetArrayField(TEXT("agent_ids"), Agents);
	WorldInfo->SetNumberField(TEXT("height"), Options.Height);
	WorldInfo->SetNumberField(TEXT("width"), Options.Width);

	TSharedRef<FJsonObject> Meta = MakeShared<FJsonObject>();
	Meta->SetStringField(TEXT("format"), FormatName);
	Meta->SetNumberField(TEXT("version"), FormatVersion);
	Meta->SetNumberField(TEXT("index"), 0);
	Meta->SetStringField(TEXT("name"), EpisodeName);
	Meta->SetNumberField(TEXT("seed"), 0);
	Meta->SetStringField(TEXT("scene"), Sequence.GetPathName());
	Meta->SetStringField(TEXT("policy"), TEXT("sequencer"));
	Meta->SetStringField(TEXT("world"), TEXT("unreal-sequence"));
	Meta->SetObjectField(TEXT("world_info"), WorldInfo);
	Meta->SetArrayField(TEXT("resolution"), Resolution);
	Meta->SetArrayField(TEXT("agent_ids"), Agents);
	Meta->SetNumberField(TEXT("steps"), NumFrames - 1);
	Meta->SetNumberField(TEXT("frames"), NumFrames);
	Meta->SetArrayField(TEXT("fields"), Fields);
	Meta->SetNumberField(TEXT("display_rate_fps"), DisplayRate.AsDecimal());
	bOk = bOk && WriteJson(FPaths::Combine(TempDir, TEXT("meta.json")), Meta);
	bOk = bOk && Files.Move(*FinalDir, *TempDir, /*bReplace=*/true);

	TSharedRef<FJsonObject> Args = MakeShared<FJsonObject>();
	Args->SetStringField(TEXT("world"), TEXT("unreal-sequence"));
	Args->SetStringField(TEXT("scene"), Sequence.GetPathName());
	Args->SetNumberField(TEXT("episodes"), 1);
	Args->SetNumberField(TEXT("steps"), NumFrames - 1);
	Args->SetStringField(TEXT("policy"), TEXT("sequencer"));
	Args->SetArrayField(TEXT("resolution"), Resolution);
	Args->SetNumberField(TEXT("seed"), 0);
	Args->SetNumberField(TEXT("num_agents"), 1);
	Args->SetStringField(TEXT("rgb_codec"), TEXT("raw"));

	TSharedRef<FJsonObject> Entry = MakeShared<FJsonObject>();
	Entry->SetStringField(TEXT("name"), EpisodeName);
	Entry->SetNumberField(TEXT("index"), 0);
	Entry->SetNumberField(TEXT("seed"), 0);
	Entry->SetNumberField(TEXT("frames"), NumFrames);
	Entry->SetArrayField(TEXT("fields"), Fields);

	TSharedRef<FJsonObject> Manifest = MakeShared<FJsonObject>();
	Manifest->SetStringField(TEXT("format"), FormatName);
	Manifest->SetNumberField(TEXT("version"), FormatVersion);
	Manifest->SetNumberField(TEXT("created"), Now);
	Manifest->SetNumberField(TEXT("updated"), Now);
	Manifest->SetObjectField(TEXT("args"), Args);
	Manifest->SetObjectField(TEXT("world_info"), WorldInfo);
	Manifest->SetArrayField(TEXT("resolution"), Resolution);
	Manifest->SetArrayField(TEXT("agent_ids"), Agents);
	Manifest->SetArrayField(TEXT("episodes"), {MakeShared<FJsonValueObject>(Entry)});
	bOk = bOk && WriteJson(FPaths::Combine(Options.OutputDirectory, TEXT("manifest.json")), Manifest);

	if (!bOk)
	{
		OutError = FString::Printf(TEXT("could not write the dataset under %s"), *Options.OutputDirectory);
	}
	return bOk;
}
