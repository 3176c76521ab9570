#!/usr/bin/env bash
# Installs the real Bicep CLI (the `bicep` binary inside NuGet's Azure.Bicep.CommandLine.linux-x64 package) into
# .tools/bicep/ at the version pinned in infra/tools/BICEP_VERSION, through `dotnet restore` of a throwaway project
# with a <PackageDownload> (NuGet is the only place this machine can get it from). Idempotent: does nothing when
# .tools/bicep/bicep already reports the pinned version. Prints the binary's path on its last line.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
version="$(tr -d '[:space:]' < "$root/infra/tools/BICEP_VERSION")"
package="Azure.Bicep.CommandLine.linux-x64"
dest="$root/.tools/bicep"
bin="$dest/bicep"

if [[ -x "$bin" ]] && "$bin" --version 2>/dev/null | grep -q "Bicep CLI version $version "; then
  echo "bicep $version already installed"
  echo "$bin"
  exit 0
fi

command -v dotnet >/dev/null || { echo "install-bicep: dotnet (SDK) is needed to restore $package from NuGet" >&2; exit 1; }
[[ "$(uname -s)-$(uname -m)" == "Linux-x86_64" ]] || { echo "install-bicep: $package is for linux-x64 only" >&2; exit 1; }

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# PackageDownload fetches the package without referencing it; the target framework only has to be one the SDK knows:
# the SDK's own (net<major>.0).
tfm="net$(dotnet --version | cut -d. -f1).0"
cat > "$work/restore.csproj" <<XML
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <TargetFramework>$tfm</TargetFramework>
  </PropertyGroup>
  <ItemGroup>
    <PackageDownload Include="$package" Version="[$version]" />
  </ItemGroup>
</Project>
XML
dotnet restore "$work/restore.csproj" --packages "$work/packages" --verbosity quiet >&2
src="$work/packages/${package,,}/$version/tools/bicep"
[[ -f "$src" ]] || { echo "install-bicep: $src not found in the restored package" >&2; exit 1; }
mkdir -p "$dest"
install -m 0755 "$src" "$bin.tmp"
mv -f "$bin.tmp" "$bin"
"$bin" --version >&2
echo "$bin"
