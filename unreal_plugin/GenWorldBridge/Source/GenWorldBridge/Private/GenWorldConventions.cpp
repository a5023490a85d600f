#include "GenWorldConventions.h"

#include "GenWorldCoreConversions.h"

using GenWorldCoreConversions::FromCore;
using GenWorldCoreConversions::ToCore;

namespace
{
	// Unreal camera-local axes in OpenCV camera coordinates: UE +X (forward) = cv +z,
	// UE +Y (right) = cv +x, UE +Z (up) = cv -y. This map mirrors one axis (det -1): the
	// handedness change between the two frames.
	FVector CvToUeCameraAxes(const FVector& Cv) { return FVector(Cv.Z, Cv.X, -Cv.Y); }
	FVector UeCameraAxesToCv(const FVector& Ue) { return FVector(Ue.Y, -Ue.Z, Ue.X); }
}

FGenWorldPose GenWorldConventions::UeCameraToPose(const FVector& LocationCm, const FRotator& Rotation)
{
	// The core takes (pitch, yaw, roll) in degrees, exactly FRotator's fields.
	const genworld::Vec3 RotatorDeg{Rotation.Pitch, Rotation.Yaw, Rotation.Roll};
	return FromCore(genworld::ue_camera_to_pose(ToCore(LocationCm), RotatorDeg));
}

void GenWorldConventions::PoseToUeCamera(const FGenWorldPose& Pose, FVector& OutLocationCm, FRotator& OutRotation)
{
	const genworld::UeCamera Camera = genworld::pose_to_ue_camera(ToCore(Pose));
	OutLocationCm = FromCore(Camera.location_cm);
	OutRotation = FRotator(Camera.rotator_deg[0], Camera.rotator_deg[1], Camera.rotator_deg[2]);
}

FGenWorldIntrinsics GenWorldConventions::IntrinsicsFromHorizontalFov(int32 Width, int32 Height, double FovDeg)
{
	return FromCore(genworld::intrinsics_from_fov(Width, Height, FovDeg, "horizontal"));
}

FVector GenWorldConventions::UeLocationToWorld(const FVector& LocationCm)
{
	return FromCore(genworld::ue_location_to_world(ToCore(LocationCm)));
}

FTransform GenWorldConventions::CvCameraDeltaToUeCameraLocal(const FVector& TranslationMeters, const FVector& RotationVectorRad)
{
	const FVector TranslationCm = CvToUeCameraAxes(TranslationMeters) * genworld::kUeCmPerM;

	// A rotation by angle a about axis n, conjugated by a mirror M, is a rotation by -a
	// about M n: the physical turn is the same, its sense flips with the handedness.
	const double Angle = RotationVectorRad.Size();
	FQuat Rotation = FQuat::Identity;
	if (Angle > UE_DOUBLE_SMALL_NUMBER)
	{
		const FVector AxisUe = CvToUeCameraAxes(RotationVectorRad / Angle);
		Rotation = FQuat(AxisUe, -Angle);
	}
	return FTransform(Rotation, TranslationCm);
}

FVector GenWorldConventions::UeCameraLocalToCvCamera(const FVector& LocalCm)
{
	return UeCameraAxesToCv(LocalCm) / genworld::kUeCmPerM;
}

bool GenWorldConventions::IsRigid(const FGenWorldPose& Pose)
{
	return genworld::is_rigid(ToCore(Pose));
}
