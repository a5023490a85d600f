// Plain copies between the plugin's UE-side value types and the core's std::array types.
// No frame conversion happens here (that is GenWorldConventions' job): these are the
// same numbers in two containers.
#pragma once

#include "GenWorldConventions.h"
#include "GenWorldCoreIncludes.h"

namespace GenWorldCoreConversions
{
	// Row-major N x N copy between the plugin's USTRUCT matrices and the core's arrays.
	template <int32 N, typename DstT, typename SrcT>
	inline void CopySquare(DstT& Dst, const SrcT& Src)
	{
		for (int32 Row = 0; Row < N; ++Row)
		{
			for (int32 Col = 0; Col < N; ++Col)
			{
				Dst[Row][Col] = Src[Row][Col];
			}
		}
	}

	inline genworld::Mat4 ToCore(const FGenWorldPose& Pose)
	{
		genworld::Mat4 Out{};
		CopySquare<4>(Out, Pose.M);
		return Out;
	}

	inline FGenWorldPose FromCore(const genworld::Mat4& Pose)
	{
		FGenWorldPose Out;
		CopySquare<4>(Out.M, Pose);
		return Out;
	}

	inline genworld::Mat3 ToCore(const FGenWorldIntrinsics& K)
	{
		genworld::Mat3 Out{};
		CopySquare<3>(Out, K.M);
		return Out;
	}

	inline FGenWorldIntrinsics FromCore(const genworld::Mat3& K)
	{
		FGenWorldIntrinsics Out;
		CopySquare<3>(Out.M, K);
		return Out;
	}

	inline genworld::Vec3 ToCore(const FVector& V) { return {V.X, V.Y, V.Z}; }
	inline FVector FromCore(const genworld::Vec3& V) { return FVector(V[0], V[1], V[2]); }
}
