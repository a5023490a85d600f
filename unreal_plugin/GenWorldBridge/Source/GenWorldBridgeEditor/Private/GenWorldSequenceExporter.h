// Exports a Level Sequence's camera motion as a GenWorld trajectory dataset
// (docs/dataset.md, format `genworld-trajectories` v1) with one episode and one agent:
//
//   OUT/manifest.json
//   OUT/episodes/ep_000000/pose.npy      float64 (T, 1, 4, 4)  camera-to-world, OpenCV axes
//                         /K.npy         float64 (T, 1, 3, 3)
//                         /frame_id.npy  int64   (T, 1)
//                         /sim_time.npy  float64 (T, 1)        seconds from the playback start
//                         /meta.json
//
// One frame per display-rate frame of the playback range. The camera is the Camera Cut
// track's active camera at each frame, or the first CineCameraActor binding when there is
// no cut track. rgb/depth are rendered afterwards by replaying the poses through SetPose
// (docs/unreal.md), so authoring never needs the GPU.
#pragma once

#include "CoreMinimal.h"

class ULevelSequence;
class UWorld;

struct FGenWorldExportOptions
{
	FString OutputDirectory;
	int32 Width = 0;
	int32 Height = 0;
	/** World used to resolve possessable cameras (the editor world). */
	UWorld* World = nullptr;
};

namespace GenWorldSequenceExporter
{
	/** Writes the dataset; false with OutError on a sequence it cannot read or an I/O failure. */
	bool Export(ULevelSequence& Sequence, const FGenWorldExportOptions& Options, FString& OutError);
}
