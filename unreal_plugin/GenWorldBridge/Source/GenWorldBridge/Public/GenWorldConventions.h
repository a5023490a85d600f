// The one boundary between Unreal's frames and GenWorld's (ARCHITECTURE.md §3,
// docs/conventions.md). Every FVector/FRotator <-> GenWorld conversion in the plugin
// goes through here, and here only wraps the core's conventions (which mirror
// bridge/conventions.py and are tested against tests/data/conventions_vectors.json), so
// Unreal and Python can never disagree about an axis.
//
// Unreal: left-handed, X forward, Y right, Z up, centimetres, degrees.
// GenWorld: world right-handed Z up metres; camera OpenCV (x right, y down, z forward);
// poses camera-to-world.
#pragma once

#include "CoreMinimal.h"

/** 4x4 camera-to-world pose in GenWorld's frames, row-major: M[row][col]. Not a UE FMatrix (those are row-vector). */
struct GENWORLDBRIDGE_API FGenWorldPose
{
	double M[4][4] = {{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}};
};

/** 3x3 pinhole intrinsics in pixels, row-major, pixel centres at integer coordinates. */
struct GENWORLDBRIDGE_API FGenWorldIntrinsics
{
	double M[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
};

namespace GenWorldConventions
{
	/** Pose of an Unreal camera (looks along its +X) at a world location (cm) and rotation. */
	GENWORLDBRIDGE_API FGenWorldPose UeCameraToPose(const FVector& LocationCm, const FRotator& Rotation);

	/** Inverse of UeCameraToPose. */
	GENWORLDBRIDGE_API void PoseToUeCamera(const FGenWorldPose& Pose, FVector& OutLocationCm, FRotator& OutRotation);

	/** K of a camera whose FOVAngle (Unreal: horizontal) is FovDeg. */
	GENWORLDBRIDGE_API FGenWorldIntrinsics IntrinsicsFromHorizontalFov(int32 Width, int32 Height, double FovDeg);

	/** Unreal world location (cm) to GenWorld world position (m). */
	GENWORLDBRIDGE_API FVector UeLocationToWorld(const FVector& LocationCm);

	/**
	 * A wrist delta given in the OpenCV camera frame (translation in metres, rotation as
	 * an axis-angle vector in radians) expressed in the Unreal camera's local frame
	 * (X forward, Y right, Z up; translation in cm).
	 */
	GENWORLDBRIDGE_API FTransform CvCameraDeltaToUeCameraLocal(const FVector& TranslationMeters, const FVector& RotationVectorRad);

	/** A point in the Unreal camera's local frame (cm) to the OpenCV camera frame (m). */
	GENWORLDBRIDGE_API FVector UeCameraLocalToCvCamera(const FVector& LocalCm);

	/** Whether Pose is finite and rigid (orthonormal rotation, det +1, last row 0 0 0 1). */
	GENWORLDBRIDGE_API bool IsRigid(const FGenWorldPose& Pose);
}
