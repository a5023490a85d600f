// Plain copies between the plugin's UE-side value types and the core's std::array types.
// No frame conversion happens here (that is GenWorldConventions' job): these are the
// same numbers in two containers.
#pragma once

#include "GenWorldConventions.h"
#include "GenWorldCoreIncludes.h"

namespace GenWorldCoreConversions
{
	inline genworld::Mat4 ToCore(const FGenWorldPose& Pose)
	{
		genworld::Mat4 Out{};
		for (int32 Row = 0; Row < 4; ++Row)
		{
			for (int32 Col = 0; Col < 4; ++Col)
			{
				Out[Row][Col] = Pose.M[Row][Col];
			}
		}
		return Out;
	}

	inline FGenWorldPose FromCore(const genworld::Mat4& Pose)
	{
		FGenWorldPose Out;
		for (int32 Row = 0; Row < 4; ++Row)
		{
			for (int32 Col = 0; Col < 4; ++Col)
			{
				Out.M[Row][Col] = Pose[Row][Col];
			}
		}
		return Out;
	}

	inline genworld::Mat3 ToCore(const FGenWorldIntrinsics& K)
	{
		genworld::Mat3 Out{};
		for (int32 Row = 0; Row < 3; ++Row)
		{
			for (int32 Col = 0; Col < 3; ++Col)
			{
				Out[Row][Col] = K.M[Row][Col];
			}
		}
		return Out;
	}

	inline FGenWorldIntrinsics FromCore(const genworld::Mat3& K)
	{
		FGenWorldIntrinsics Out;
		for (int32 Row = 0; Row < 3; ++Row)
		{
			for (int32 Col = 0; Col < 3; ++Col)
			{
				Out.M[Row][Col] = K[Row][Col];
			}
		}
		return Out;
	}

	inline genworld::Vec3 ToCore(const FVector& V) { return {V.X, V.Y, V.Z}; }
	inline FVector FromCore(const genworld::Vec3& V) { return FVector(V[0], V[1], V[2]); }
}
