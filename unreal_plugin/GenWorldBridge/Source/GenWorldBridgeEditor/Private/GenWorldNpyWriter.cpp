#include "GenWorldNpyWriter.h"

#include "HAL/FileManager.h"
#include "Serialization/Archive.h"

namespace
{
	constexpr uint8 Magic[] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
	constexpr uint8 MajorVersion = 1;
	constexpr uint8 MinorVersion = 0;
	constexpr int32 PreambleBytes = sizeof(Magic) + 2 + 2;  // magic, version, uint16 header length
	constexpr int32 Alignment = 64;

	FString ShapeLiteral(const TArray<int64>& Shape)
	{
		// Python tuple syntax: a 1-tuple needs its trailing comma.
		FString Out = TEXT("(");
		for (int32 Index = 0; Index < Shape.Num(); ++Index)
		{
			Out += FString::Printf(TEXT("%lld"), Shape[Index]);
			if (Index + 1 < Shape.Num() || Shape.Num() == 1)
			{
				Out += TEXT(",");
			}
			if (Index + 1 < Shape.Num())
			{
				Out += TEXT(" ");
			}
		}
		return Out + TEXT(")");
	}
}

bool GenWorldNpy::Write(const FString& Path, const char* Descr, const TArray<int64>& Shape, const void* Data, int64 NumBytes)
{
	static_assert(PLATFORM_LITTLE_ENDIAN, "the NPY descr strings below say little-endian");
	FString Header = FString::Printf(TEXT("{'descr': '%s', 'fortran_order': False, 'shape': %s, }"), UTF8_TO_TCHAR(Descr), *ShapeLiteral(Shape));
	const int32 Unpadded = PreambleBytes + Header.Len() + 1;  // + '\n'
	const int32 Padding = (Alignment - Unpadded % Alignment) % Alignment;
	Header += FString::ChrN(Padding, TEXT(' '));
	Header += TEXT("\n");
	const FTCHARToUTF8 HeaderUtf8(*Header);
	const uint16 HeaderLength = uint16(HeaderUtf8.Length());

	TUniquePtr<FArchive> File(IFileManager::Get().CreateFileWriter(*Path));
	if (!File)
	{
		return false;
	}
	File->Serialize(const_cast<uint8*>(Magic), sizeof(Magic));
	uint8 Version[] = {MajorVersion, MinorVersion};
	File->Serialize(Version, sizeof(Version));
	uint8 Length[] = {uint8(HeaderLength & 0xFF), uint8(HeaderLength >> 8)};  // little-endian uint16
	File->Serialize(Length, sizeof(Length));
	File->Serialize(const_cast<ANSICHAR*>(HeaderUtf8.Get()), HeaderLength);
	File->Serialize(const_cast<void*>(Data), NumBytes);
	return File->Close() && !File->IsError();
}
