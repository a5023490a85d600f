#include "Modules/ModuleManager.h"

// Everything runs from UGenWorldSubsystem; the module itself has no state.
IMPLEMENT_MODULE(FDefaultModuleImpl, GenWorldBridge)
