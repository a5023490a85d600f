// Prebuilt static gRPC + protobuf + abseil + upb + re2 + c-ares, and the UE-free GenWorld
// core (unreal_plugin/core) compiled against them, as one External module.
//
// Produced by unreal_plugin/scripts/build_grpc_thirdparty.{sh,ps1} into
//   include/                     headers of every library (grpcpp, google/protobuf, absl, genworld ...)
//   lib/<Platform>/              static libraries (.a / .lib), Platform = Win64 | Linux | Mac
// Neither folder is committed (see GenWorldBridge/.gitignore).
//
// OpenSSL and zlib are NOT in lib/: gRPC was configured with gRPC_SSL_PROVIDER=package and
// gRPC_ZLIB_PROVIDER=package against the engine's own copies, and this module links the
// engine's modules instead, so one OpenSSL and one zlib exist in the process.
//
// The libraries were built without RTTI and exceptions (-fno-rtti / /GR-, and
// -fno-exceptions / no /EHsc for gRPC, protobuf and abseil), matching UE's defaults; the
// definitions below tell their headers so.

using System.Collections.Generic;
using System.IO;
using UnrealBuildTool;

public class GenWorldGrpc : ModuleRules
{
	public GenWorldGrpc(ReadOnlyTargetRules Target) : base(Target)
	{
		Type = ModuleType.External;

		string IncludeDir = Path.Combine(ModuleDirectory, "include");
		string LibDir = Path.Combine(ModuleDirectory, "lib", PlatformFolder(Target));

		if (!Directory.Exists(IncludeDir) || !Directory.Exists(LibDir))
		{
			throw new BuildException(
				"GenWorldGrpc: prebuilt libraries not found under " + LibDir + ". " +
				"Run unreal_plugin/scripts/build_grpc_thirdparty.sh (Linux/macOS) or " +
				"build_grpc_thirdparty.ps1 (Windows) first; see docs/unreal.md.");
		}

		// System include path: warnings inside third-party headers are not ours to fix,
		// and UE's -Werror must not trip on them.
		PublicSystemIncludePaths.Add(IncludeDir);

		PublicAdditionalLibraries.AddRange(StaticLibraries(LibDir, Target));

		PublicDefinitions.AddRange(new string[]
		{
			// Headers must agree with how the libraries were compiled.
			"GOOGLE_PROTOBUF_NO_RTTI=1",
			"PROTOBUF_USE_EXCEPTIONS=0",
			"GRPC_ALLOW_EXCEPTIONS=0",
		});

		// Engine copies of OpenSSL and zlib (gRPC_SSL_PROVIDER / gRPC_ZLIB_PROVIDER = package).
		AddEngineThirdPartyPrivateStaticDependencies(Target, "OpenSSL", "zlib");

		if (Target.Platform == UnrealTargetPlatform.Win64)
		{
			PublicSystemLibraries.AddRange(new string[]
			{
				"ws2_32.lib",    // sockets (gRPC, c-ares)
				"crypt32.lib",   // OpenSSL certificate store access
				"iphlpapi.lib",  // c-ares adapter enumeration
				"bcrypt.lib",    // abseil random seeding
				"dbghelp.lib",   // abseil symbolizer
			});
		}
		else if (Target.Platform == UnrealTargetPlatform.Mac)
		{
			PublicSystemLibraries.Add("resolv");           // c-ares
			PublicFrameworks.Add("CoreFoundation");        // abseil time zones
		}
	}

	/// Folder name under lib/ that the build scripts write for this target.
	private static string PlatformFolder(ReadOnlyTargetRules Target)
	{
		if (Target.Platform == UnrealTargetPlatform.Win64) return "Win64";
		if (Target.Platform == UnrealTargetPlatform.Mac) return "Mac";
		if (Target.Platform == UnrealTargetPlatform.Linux) return "Linux";
		throw new BuildException("GenWorldGrpc: no prebuilt gRPC for platform " + Target.Platform);
	}

	/// Every static library the script produced. abseil alone is ~80 archives whose set
	/// changes between releases, so they are enumerated instead of listed by name; UBT
	/// links Linux archives inside --start-group/--end-group, so their order does not matter.
	private static IEnumerable<string> StaticLibraries(string LibDir, ReadOnlyTargetRules Target)
	{
		string Pattern = Target.Platform == UnrealTargetPlatform.Win64 ? "*.lib" : "*.a";
		List<string> Libraries = new List<string>(Directory.GetFiles(LibDir, Pattern));
		Libraries.Sort(System.StringComparer.Ordinal);  // deterministic link lines
		if (Libraries.Count == 0)
		{
			throw new BuildException("GenWorldGrpc: " + LibDir + " holds no " + Pattern + " files");
		}
		return Libraries;
	}
}
