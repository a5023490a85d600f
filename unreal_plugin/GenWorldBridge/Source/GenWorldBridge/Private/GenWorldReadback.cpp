#include "GenWorldReadback.h"

#include "Engine/TextureRenderTarget2D.h"
#include "RHIGPUReadback.h"
#include "RenderingThread.h"
#include "TextureResource.h"

#include <limits>

namespace
{
	constexpr int32 RgbChannels = 3;
	constexpr double CmPerMeter = 100.0;
}

struct FGenWorldReadback::FState
{
	TUniquePtr<FRHIGPUTextureReadback> Color;
	TUniquePtr<FRHIGPUTextureReadback> Depth;
	FGenWorldPixels Pixels;
	float MaxDepthCm = 0.0f;
	bool bColorDone = false;  // render thread only
	bool bDepthDone = false;  // render thread only
	bool bColorIsBgra = true; // render thread only; RTF_RGBA8 is B8G8R8A8 on desktop RHIs
	std::atomic<bool> bComplete{false};
	std::atomic<bool> bPollInFlight{false};
};

FGenWorldReadback::FGenWorldReadback(UTextureRenderTarget2D* ColorTarget, UTextureRenderTarget2D* DepthTarget, float MaxDepthMeters)
	: State(MakeShared<FState, ESPMode::ThreadSafe>())
{
	check(IsInGameThread());
	State->Color = MakeUnique<FRHIGPUTextureReadback>(TEXT("GenWorldColorReadback"));
	State->Depth = MakeUnique<FRHIGPUTextureReadback>(TEXT("GenWorldDepthReadback"));
	State->MaxDepthCm = MaxDepthMeters * CmPerMeter;
	State->Pixels.Width = ColorTarget->SizeX;
	State->Pixels.Height = ColorTarget->SizeY;
	const size_t PixelCount = size_t(ColorTarget->SizeX) * size_t(ColorTarget->SizeY);
	State->Pixels.Rgb.resize(PixelCount * RgbChannels);
	State->Pixels.Depth.resize(PixelCount);

	FTextureRenderTargetResource* ColorResource = ColorTarget->GameThread_GetRenderTargetResource();
	FTextureRenderTargetResource* DepthResource = DepthTarget->GameThread_GetRenderTargetResource();
	ENQUEUE_RENDER_COMMAND(GenWorldEnqueueReadback)(
		[State = State, ColorResource, DepthResource](FRHICommandListImmediate& RHICmdList)
		{
			// Ordered after the scene captures' render commands, so these copy this capture.
			FRHITexture* ColorTexture = ColorResource->GetRenderTargetTexture();
			State->bColorIsBgra = ColorTexture->GetFormat() != PF_R8G8B8A8;
			State->Color->EnqueueCopy(RHICmdList, ColorTexture);
			State->Depth->EnqueueCopy(RHICmdList, DepthResource->GetRenderTargetTexture());
		});
}

FGenWorldReadback::~FGenWorldReadback()
{
	// The render thread may still hold State through a queued command; the shared
	// reference keeps the staging textures alive until that command has run.
}

namespace
{
	/** Copies a mapped BGRA8 / RGBA8 staging texture into tightly packed RGB8. */
	void CopyColor(FRHIGPUTextureReadback& Readback, bool bBgra, FGenWorldPixels& Pixels)
	{
		int32 RowPitchPixels = 0;
		const uint8* Src = static_cast<const uint8*>(Readback.Lock(RowPitchPixels));
		constexpr int32 SrcChannels = 4;
		for (int32 Y = 0; Y < Pixels.Height; ++Y)
		{
			const uint8* Row = Src + size_t(Y) * RowPitchPixels * SrcChannels;
			uint8* Dst = Pixels.Rgb.data() + size_t(Y) * Pixels.Width * RgbChannels;
			for (int32 X = 0; X < Pixels.Width; ++X)
			{
				const uint8* P = Row + size_t(X) * SrcChannels;
				Dst[X * RgbChannels + 0] = bBgra ? P[2] : P[0];
				Dst[X * RgbChannels + 1] = P[1];
				Dst[X * RgbChannels + 2] = bBgra ? P[0] : P[2];
			}
		}
		Readback.Unlock();
	}

	/** Copies a mapped R32F SceneDepth (cm) into planar metres, far -> +inf. */
	void CopyDepth(FRHIGPUTextureReadback& Readback, FGenWorldPixels& Pixels, float MaxDepthCm)
	{
		int32 RowPitchPixels = 0;
		const float* Src = static_cast<const float*>(Readback.Lock(RowPitchPixels));
		const float Inf = std::numeric_limits<float>::infinity();
		for (int32 Y = 0; Y < Pixels.Height; ++Y)
		{
			const float* Row = Src + size_t(Y) * RowPitchPixels;
			float* Dst = Pixels.Depth.data() + size_t(Y) * Pixels.Width;
			for (int32 X = 0; X < Pixels.Width; ++X)
			{
				const float DepthCm = Row[X];
				Dst[X] = (DepthCm >= MaxDepthCm || !FMath::IsFinite(DepthCm)) ? Inf : float(DepthCm / CmPerMeter);
			}
		}
		Readback.Unlock();
	}
}

bool FGenWorldReadback::Poll()
{
	check(IsInGameThread());
	if (State->bComplete.load(std::memory_order_acquire))
	{
		return true;
	}
	bool bExpected = false;
	if (State->bPollInFlight.compare_exchange_strong(bExpected, true))
	{
		ENQUEUE_RENDER_COMMAND(GenWorldPollReadback)(
			[State = State](FRHICommandListImmediate&)
			{
				if (!State->bColorDone && State->Color->IsReady())
				{
					CopyColor(*State->Color, State->bColorIsBgra, State->Pixels);
					State->bColorDone = true;
				}
				if (!State->bDepthDone && State->Depth->IsReady())
				{
					CopyDepth(*State->Depth, State->Pixels, State->MaxDepthCm);
					State->bDepthDone = true;
				}
				if (State->bColorDone && State->bDepthDone)
				{
					State->bComplete.store(true, std::memory_order_release);
				}
				State->bPollInFlight.store(false, std::memory_order_release);
			});
	}
	return false;
}

FGenWorldPixels FGenWorldReadback::TakePixels()
{
	check(State->bComplete.load(std::memory_order_acquire));
	return MoveTemp(State->Pixels);
}
