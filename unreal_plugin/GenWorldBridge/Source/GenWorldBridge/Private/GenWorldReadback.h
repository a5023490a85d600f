// Asynchronous GPU -> CPU readback of one agent's colour and depth render targets.
//
// Approach: FRHIGPUTextureReadback. After the captures' render commands, a render
// command copies each target into a staging texture (EnqueueCopy, which also writes a
// GPU fence). The game thread then calls Poll() once per frame; Poll enqueues a tiny
// render command that checks the fence and, when the copy has landed, maps the staging
// texture, converts the pixels (BGRA8 -> RGB8; depth cm -> m, far -> +inf) straight into
// the result buffers and unmaps. All RHI calls stay on the render thread; the game thread
// only reads an atomic flag. Nothing ever waits for the GPU: no FlushRenderingCommands,
// no ReadSurfaceData (which stalls the game thread until the GPU drains), so several
// agents' captures overlap and the editor stays responsive while a step is in flight.
#pragma once

#include "CoreMinimal.h"
#include "Templates/SharedPointer.h"

#include <atomic>
#include <vector>

class FRHIGPUTextureReadback;
class UTextureRenderTarget2D;

/** What a finished readback produced, in GenWorld's layout. */
struct FGenWorldPixels
{
	int32 Width = 0;
	int32 Height = 0;
	std::vector<uint8> Rgb;    // H x W x 3, row-major
	std::vector<float> Depth;  // H x W, planar metres, +inf where nothing was hit
};

class FGenWorldReadback
{
public:
	/** Enqueues the copies of both targets; call right after their captures were enqueued. */
	FGenWorldReadback(UTextureRenderTarget2D* ColorTarget, UTextureRenderTarget2D* DepthTarget, float MaxDepthMeters);
	~FGenWorldReadback();

	/** Advances the readback (game thread, once per frame); true once the pixels are complete. */
	bool Poll();

	/** The pixels; valid once Poll() returned true. */
	FGenWorldPixels TakePixels();

private:
	struct FState;
	TSharedRef<FState, ESPMode::ThreadSafe> State;
};
