// Adds "Export GenWorld Trajectory..." to the Content Browser context menu of Level
// Sequence assets: pick a folder, get a dataset `genworld`/TrajectoryDataset can read.

#include "ContentBrowserMenuContexts.h"
#include "DesktopPlatformModule.h"
#include "Editor.h"
#include "Framework/Application/SlateApplication.h"
#include "GenWorldSequenceExporter.h"
#include "GenWorldSettings.h"
#include "IDesktopPlatform.h"
#include "LevelSequence.h"
#include "Misc/MessageDialog.h"
#include "Modules/ModuleManager.h"
#include "ToolMenus.h"

#define LOCTEXT_NAMESPACE "GenWorldBridgeEditor"

namespace
{
	const FName SequenceMenu(TEXT("ContentBrowser.AssetContextMenu.LevelSequence"));

	void ExportSelected(const FToolMenuContext& Context)
	{
		const UContentBrowserAssetContextMenuContext* Menu = Context.FindContext<UContentBrowserAssetContextMenuContext>();
		IDesktopPlatform* Desktop = FDesktopPlatformModule::Get();
		if (Menu == nullptr || Desktop == nullptr)
		{
			return;
		}
		FString Folder;
		const void* ParentWindow = FSlateApplication::Get().FindBestParentWindowHandleForDialogs(nullptr);
		if (!Desktop->OpenDirectoryDialog(ParentWindow, LOCTEXT("PickFolder", "GenWorld dataset folder").ToString(), FPaths::ProjectSavedDir(), Folder))
		{
			return;
		}
		const UGenWorldSettings& Settings = *GetDefault<UGenWorldSettings>();
		for (ULevelSequence* Sequence : Menu->LoadSelectedObjects<ULevelSequence>())
		{
			FGenWorldExportOptions Options;
			// Several sequences go to sibling folders named after them.
			Options.OutputDirectory = Menu->SelectedAssets.Num() > 1 ? FPaths::Combine(Folder, Sequence->GetName()) : Folder;
			Options.Width = Settings.Width;
			Options.Height = Settings.Height;
			Options.World = GEditor ? GEditor->GetEditorWorldContext().World() : nullptr;
			FString Error;
			if (!GenWorldSequenceExporter::Export(*Sequence, Options, Error))
			{
				FMessageDialog::Open(EAppMsgType::Ok, FText::Format(LOCTEXT("ExportFailed", "GenWorld export of {0} failed: {1}"),
					FText::FromString(Sequence->GetName()), FText::FromString(Error)));
			}
		}
	}
}

class FGenWorldBridgeEditorModule : public IModuleInterface
{
public:
	virtual void StartupModule() override
	{
		UToolMenus::RegisterStartupCallback(FSimpleMulticastDelegate::FDelegate::CreateRaw(this, &FGenWorldBridgeEditorModule::RegisterMenus));
	}

	virtual void ShutdownModule() override
	{
		UToolMenus::UnRegisterStartupCallback(this);
		UToolMenus::UnregisterOwner(this);
	}

private:
	void RegisterMenus()
	{
		FToolMenuOwnerScoped OwnerScoped(this);
		UToolMenu* Menu = UToolMenus::Get()->ExtendMenu(SequenceMenu);
		FToolMenuSection& Section = Menu->FindOrAddSection(TEXT("GetAssetActions"));
		Section.AddMenuEntry(
			TEXT("GenWorldExportTrajectory"),
			LOCTEXT("ExportTrajectory", "Export GenWorld Trajectory..."),
			LOCTEXT("ExportTrajectoryTooltip", "Write the camera cut / CineCamera motion as a GenWorld dataset (pose, K, frame_id, sim_time)."),
			FSlateIcon(),
			FToolMenuExecuteAction::CreateStatic(&ExportSelected));
	}
};

IMPLEMENT_MODULE(FGenWorldBridgeEditorModule, GenWorldBridgeEditor)

#undef LOCTEXT_NAMESPACE
