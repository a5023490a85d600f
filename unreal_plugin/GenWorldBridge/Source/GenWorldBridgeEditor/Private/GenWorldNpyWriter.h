// Minimal NPY v1.0 writer (https://numpy.org/neps/nep-0001-npy-format.html), enough for
// the dataset's pose/K/frame_id/sim_time arrays; numpy.load reads the result.
//
// File = b"\x93NUMPY" + version (1, 0) + little-endian uint16 header length + an ASCII
// Python dict literal {'descr': '<f8', 'fortran_order': False, 'shape': (T, 1, 4, 4), }
// padded with spaces and a final '\n' so magic + length + header is a multiple of 64
// bytes (aligned data for memory mapping), then the raw C-order little-endian data.
#pragma once

#include "CoreMinimal.h"

namespace GenWorldNpy
{
	/** Writes a C-order array; Descr is the numpy dtype string ('<f8', '<i8'). False on I/O failure. */
	bool Write(const FString& Path, const char* Descr, const TArray<int64>& Shape, const void* Data, int64 NumBytes);

	inline bool WriteFloat64(const FString& Path, const TArray<int64>& Shape, const TArray<double>& Values)
	{
		return Write(Path, "<f8", Shape, Values.GetData(), Values.Num() * int64(sizeof(double)));
	}

	inline bool WriteInt64(const FString& Path, const TArray<int64>& Shape, const TArray<int64>& Values)
	{
		return Write(Path, "<i8", Shape, Values.GetData(), Values.Num() * int64(sizeof(int64)));
	}
}
