#include "GenWorldSettings.h"

UGenWorldSettings::UGenWorldSettings()
{
	CategoryName = TEXT("Plugins");
	SectionName = TEXT("GenWorld Bridge");
}
