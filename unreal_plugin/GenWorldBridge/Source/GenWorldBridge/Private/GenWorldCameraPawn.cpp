#include "GenWorldCameraPawn.h"

#include "Components/SceneCaptureComponent2D.h"
#include "Components/SphereComponent.h"
#include "Engine/TextureRenderTarget2D.h"

namespace
{
	void SetUpOnDemandCapture(USceneCaptureComponent2D* Capture, ESceneCaptureSource Source)
	{
		Capture->CaptureSource = Source;
		// Captures are driven by requests (CaptureNow), never by the frame loop.
		Capture->bCaptureEveryFrame = false;
		Capture->bCaptureOnMovement = false;
		// Keeps view state (temporal AA history, eye adaptation) between captures, so
		// consecutive steps look like consecutive frames of one camera.
		Capture->bAlwaysPersistRenderingState = true;
		Capture->ProjectionType = ECameraProjectionMode::Perspective;
	}

	UTextureRenderTarget2D* MakeTarget(UObject* Outer, ETextureRenderTargetFormat Format, int32 Width, int32 Height, bool bLinear)
	{
		UTextureRenderTarget2D* Target = NewObject<UTextureRenderTarget2D>(Outer);
		Target->RenderTargetFormat = Format;
		Target->bForceLinearGamma = bLinear;
		Target->bAutoGenerateMips = false;
		Target->ClearColor = FLinearColor::Black;
		Target->InitAutoFormat(Width, Height);
		Target->UpdateResourceImmediate(true);
		return Target;
	}
}

AGenWorldCameraPawn::AGenWorldCameraPawn()
{
	PrimaryActorTick.bCanEverTick = false;
	AutoPossessAI = EAutoPossessAI::Disabled;

	Collision = CreateDefaultSubobject<USphereComponent>(TEXT("Collision"));
	Collision->SetCollisionProfileName(UCollisionProfile::Pawn_ProfileName);
	RootComponent = Collision;

	ColorCapture = CreateDefaultSubobject<USceneCaptureComponent2D>(TEXT("ColorCapture"));
	ColorCapture->SetupAttachment(Collision);
	SetUpOnDemandCapture(ColorCapture, ESceneCaptureSource::SCS_FinalColorLDR);

	DepthCapture = CreateDefaultSubobject<USceneCaptureComponent2D>(TEXT("DepthCapture"));
	DepthCapture->SetupAttachment(Collision);
	SetUpOnDemandCapture(DepthCapture, ESceneCaptureSource::SCS_SceneDepth);
}

void AGenWorldCameraPawn::ConfigureCapture(int32 Width, int32 Height, float HorizontalFovDeg, float CollisionRadiusCm)
{
	Collision->SetSphereRadius(CollisionRadiusCm);

	// RGBA8 (stored as B8G8R8A8) holds the tonemapped sRGB image; R32F holds depth in cm
	// at full float precision (an 8-bit or half target would quantise far depth).
	ColorTarget = MakeTarget(this, ETextureRenderTargetFormat::RTF_RGBA8, Width, Height, /*bLinear=*/false);
	DepthTarget = MakeTarget(this, ETextureRenderTargetFormat::RTF_R32f, Width, Height, /*bLinear=*/true);

	ColorCapture->TextureTarget = ColorTarget;
	DepthCapture->TextureTarget = DepthTarget;
	ColorCapture->FOVAngle = HorizontalFovDeg;  // Unreal's FOVAngle is horizontal
	DepthCapture->FOVAngle = HorizontalFovDeg;
}

void AGenWorldCameraPawn::CaptureNow()
{
	ColorCapture->CaptureScene();
	DepthCapture->CaptureScene();
}

FTransform AGenWorldCameraPawn::GetCameraTransform() const
{
	return ColorCapture->GetComponentTransform();
}

float AGenWorldCameraPawn::GetHorizontalFovDeg() const
{
	return ColorCapture->FOVAngle;
}
