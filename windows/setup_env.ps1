<#
.SYNOPSIS
Sets up sunnypilot-training on Windows: Python 3.11, the venv\ virtual environment, torch for this GPU, the project,
the CARLA client.

.DESCRIPTION
Run once from any folder (again to repair or update; every step reuses what is there):
  1. finds Python 3.11 (the `py -3.11` launcher, else `python` on PATH, checking its version); when there is none it
     installs it with `winget install Python.Python.3.11` and says so;
  2. creates venv\ at the repository root and upgrades pip;
  3. installs the project without its dependencies (`pip install --no-deps -e <repo>`) so that `sptrain doctor`
     can answer what to install (the decisions live in Python: cli\torch_index.py and
     collector\carla_backend\client_choice.py, not here):
     - with -CarlaRoot (or CARLA_ROOT already set), first, before any large download: `sptrain doctor --carla-root
       DIR` finds CarlaUE4.exe / CarlaUnreal.exe in DIR or one folder down (the 0.9.x zips unpack into
       WindowsNoEditor\, 0.10.0 into Carla-0.10.0-Win64-Shipping\), reads the release and chooses its client for
       this Python: the wheel shipped in PythonAPI\carla\dist, else the package index's; when none exists (CARLA
       0.9.15 and 0.10.0 have no Python 3.11 client) it stops here and says what to do;
     - `sptrain doctor --torch-index --cuda` with -InstallCUDA (compute capability and driver from nvidia-smi; a
       driver too old for the build stops here with the fix), else `--cpu`; and `--torch-requirement`;
  4. installs torch from that index within the project's requirement, removing an installed torch of another build
     first (pip would keep a build whose local label sorts higher: +cu130 > +cu126 > +cpu), then the project with its
     dependencies (`pip install -e <repo>[carla]`; without the carla extra when that fails), and checks the result
     with `sptrain doctor --torch-verify` (torch.version.cuda, and a visible GPU for a CUDA build);
  5. with a CARLA folder: installs the client chosen in step 3 and sets the user environment variable CARLA_ROOT
     to the folder holding the launcher;
  6. finishes with `sptrain doctor`.

.PARAMETER InstallCUDA
Install the CUDA build of torch for this machine's NVIDIA GPU (needs the NVIDIA driver: nvidia-smi; the cu130
build, for RTX 50-series cards, needs driver R580 or newer). Without it the CPU build is installed. The CUDA toolkit
itself is not needed: the torch wheel carries its CUDA libraries.

.PARAMETER PythonVersion
The Python to use: 3.11 (default, any 3.11.x) or an exact 3.11.x. The toolkit and the CARLA client wheels are built
for 3.11.

.PARAMETER CarlaRoot
The folder CARLA was unpacked into (holding CarlaUE4.exe or CarlaUnreal.exe, or a folder such as WindowsNoEditor\
that does): its client is installed and CARLA_ROOT is set for your user. Default: the CARLA_ROOT environment
variable when it is set. CARLA 0.9.16 is the release these scripts are made for (its Python 3.11 client is on PyPI).

.EXAMPLE
.\windows\setup_env.ps1

.EXAMPLE
.\windows\setup_env.ps1 -InstallCUDA -CarlaRoot C:\CARLA_0.9.16

.EXAMPLE
.\windows\setup_env.ps1 -InstallCUDA -PythonVersion 3.11.9
#>
[CmdletBinding()]
param(
    [switch]$InstallCUDA,
    [ValidatePattern('^3\.11(\.\d{1,2})?$')][string]$PythonVersion = '3.11',
    [ValidateNotNullOrEmpty()][string]$CarlaRoot
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

Import-Module (Join-Path $PSScriptRoot 'common.psm1') -Force

function Get-PythonInfo {
    <#
    .SYNOPSIS
    Path and version (x.y.z) of the Python a command starts, or $null when it does not start.
    .PARAMETER FilePath
    py or python.
    .PARAMETER Selector
    Arguments before -c, e.g. -3.11 for the py launcher.
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true)][ValidateNotNullOrEmpty()][string]$FilePath,
        [string[]]$Selector = @()
    )
    # No quotes inside the code: Windows PowerShell 5.1 passes embedded double quotes to native programs mangled.
    # The path comes back hex-encoded UTF-8: a pipe would turn a non-ASCII user name into mojibake.
    $Probe = 'import sys, struct; print(sys.executable.encode().hex()); print(*sys.version_info[:3], sep=chr(46)); print(struct.calcsize(chr(80)) * 8)'
    try {
        $Lines = @(Invoke-NativeCommand -FilePath $FilePath -ArgumentList ($Selector + @('-c', $Probe)))
    }
    catch {
        return $null
    }
    if ($Lines.Count -lt 3) { return $null }
    $Hex = "$($Lines[-3])".Trim()
    $Bytes = [byte[]]@(for ($i = 0; $i -lt $Hex.Length; $i += 2) { [Convert]::ToByte($Hex.Substring($i, 2), 16) })
    return [pscustomobject]@{
        Path    = [Text.Encoding]::UTF8.GetString($Bytes)
        Version = "$($Lines[-2])".Trim()
        Bits    = "$($Lines[-1])".Trim()
    }
}

function Find-Python {
    <#
    .SYNOPSIS
    The python.exe of the wanted version (py launcher, python on PATH, the installer's folders), or $null.
    .PARAMETER Version
    3.11 (any 3.11.x) or an exact 3.11.x.
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true)][ValidatePattern('^\d+\.\d+(\.\d+)?$')][string]$Version
    )
    $MajorMinor = ($Version.Split('.')[0..1]) -join '.'
    $Found = @()
    if (Get-Command 'py' -ErrorAction SilentlyContinue) {
        $Found += Get-PythonInfo -FilePath 'py' -Selector @("-$MajorMinor-64")
    }
    if (Get-Command 'python' -ErrorAction SilentlyContinue) {
        $Found += Get-PythonInfo -FilePath 'python'
    }
    # Where the python.org installer (also behind winget) puts it, per user and for all users, should PATH lack it.
    $Folder = 'Python' + ($MajorMinor -replace '\.', '')
    $Known = @()
    if ($env:LOCALAPPDATA) { $Known += Join-Path $env:LOCALAPPDATA "Programs\Python\$Folder\python.exe" }
    if ($env:ProgramFiles) { $Known += Join-Path $env:ProgramFiles "$Folder\python.exe" }
    foreach ($Exe in $Known) {
        if (Test-Path -LiteralPath $Exe -PathType Leaf) { $Found += Get-PythonInfo -FilePath $Exe }
    }
    foreach ($Info in $Found) {
        if ($Info -and $Info.Bits -ne '64') {
            Write-Host "Skipping $($Info.Bits)-bit Python $($Info.Version) at $($Info.Path) (torch needs 64-bit)"
            continue
        }
        if ($Info -and (($Info.Version -eq $Version) -or $Info.Version.StartsWith("$Version."))) {
            Write-Host "Python $($Info.Version): $($Info.Path)"
            return $Info.Path
        }
        if ($Info) { Write-Host "Skipping Python $($Info.Version) at $($Info.Path) (want $Version)" }
    }
    return $null
}

function Install-Python {
    <#
    .SYNOPSIS
    Installs Python with winget and reloads PATH for this session.
    .PARAMETER Version
    3.11 (the newest 3.11.x) or an exact 3.11.x.
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true)][ValidatePattern('^\d+\.\d+(\.\d+)?$')][string]$Version
    )
    $MajorMinor = ($Version.Split('.')[0..1]) -join '.'
    if (-not (Get-Command 'winget' -ErrorAction SilentlyContinue)) {
        throw "Python $Version was not found and winget is not available: install Python $Version from python.org (tick 'Add python.exe to PATH') and run this script again"
    }
    Write-Host "Python $Version was not found: installing it with winget install Python.Python.$MajorMinor"
    $WingetArgs = @('install', '--id', "Python.Python.$MajorMinor", '--exact', '--accept-package-agreements',
        '--accept-source-agreements')
    if ($Version -ne $MajorMinor) { $WingetArgs += @('--version', $Version) }
    Invoke-NativeCommand -FilePath 'winget' -ArgumentList $WingetArgs
    # The installer changes PATH for new sessions only: read it again for this one.
    $env:PATH = @(
        [Environment]::GetEnvironmentVariable('Path', 'Machine'),
        [Environment]::GetEnvironmentVariable('Path', 'User')
    ) -join [IO.Path]::PathSeparator
}

$RepoRoot = Get-RepositoryRoot
$VenvDir = Join-Path $RepoRoot 'venv'
$VenvPython = Join-Path $VenvDir 'Scripts\python.exe'

# 1. Python
$BasePython = Find-Python -Version $PythonVersion
if (-not $BasePython) {
    Install-Python -Version $PythonVersion
    $BasePython = Find-Python -Version $PythonVersion
    if (-not $BasePython) {
        throw "Python $PythonVersion was installed but is not visible in this session yet: open a new PowerShell window and run this script again"
    }
}

# 2. The virtual environment (one made with another Python is made again)
if (Test-Path -LiteralPath $VenvPython -PathType Leaf) {
    $VenvInfo = Get-PythonInfo -FilePath $VenvPython
    $Wanted = "$(($PythonVersion.Split('.')[0..1]) -join '.')."
    if ($VenvInfo -and $VenvInfo.Bits -eq '64' -and ("$($VenvInfo.Version).").StartsWith($Wanted)) {
        Write-Host "Reusing the virtual environment $VenvDir (Python $($VenvInfo.Version))"
    }
    else {
        Write-Host "The virtual environment $VenvDir was made with another Python: making it again"
        Remove-Item -LiteralPath $VenvDir -Recurse -Force
        Invoke-NativeCommand -FilePath $BasePython -ArgumentList @('-m', 'venv', $VenvDir)
    }
}
else {
    Write-Host "Creating the virtual environment $VenvDir"
    Invoke-NativeCommand -FilePath $BasePython -ArgumentList @('-m', 'venv', $VenvDir)
}
Invoke-NativeCommand -FilePath $VenvPython -ArgumentList @('-m', 'pip', 'install', '--upgrade', 'pip')

# 3. The project alone, to ask it what to install (the decisions live in Python, see the help above)
Invoke-NativeCommand -FilePath $VenvPython -ArgumentList @('-m', 'pip', 'install', '--no-deps', '--editable', $RepoRoot)

# 3a. CARLA first, before any large download: its launcher, release and the client for this Python
if (-not $PSBoundParameters.ContainsKey('CarlaRoot') -and $env:CARLA_ROOT) {
    if (Test-Path -LiteralPath $env:CARLA_ROOT -PathType Container) {
        $CarlaRoot = $env:CARLA_ROOT
        Write-Host "Using CARLA_ROOT=$CarlaRoot (to set up without CARLA, clear it: [Environment]::SetEnvironmentVariable('CARLA_ROOT', `$null, 'User'))"
    }
    else {
        Write-Warning "CARLA_ROOT=$env:CARLA_ROOT is not a folder (moved?): skipping the CARLA client; pass -CarlaRoot to fix it"
    }
}
$Carla = $null
if ($CarlaRoot) {
    if (-not (Test-Path -LiteralPath $CarlaRoot -PathType Container)) {
        throw "-CarlaRoot $CarlaRoot is not a folder; pass the folder you unpacked CARLA into"
    }
    $CarlaRoot = (Resolve-Path -LiteralPath $CarlaRoot).ProviderPath
    $CarlaArgs = @('-m', 'sunnypilot_training.cli.main', 'doctor', '--carla-root', $CarlaRoot)
    # One JSON line (non-ASCII characters escaped, so no console code page can garble a path)
    $Carla = "$(Invoke-NativeCommand -FilePath $VenvPython -ArgumentList $CarlaArgs | Select-Object -Last 1)" | ConvertFrom-Json
}

# 3b. torch: the build for this GPU and driver, and the project's torch requirement
if ($InstallCUDA) {
    $IndexArgs = @('-m', 'sunnypilot_training.cli.main', 'doctor', '--torch-index', '--cuda')
}
else {
    $IndexArgs = @('-m', 'sunnypilot_training.cli.main', 'doctor', '--torch-index', '--cpu')
}
$TorchIndex = "$(Invoke-NativeCommand -FilePath $VenvPython -ArgumentList $IndexArgs | Select-Object -Last 1)".Trim()
if ($TorchIndex -notmatch '^https://') {
    throw "sptrain doctor --torch-index printed '$TorchIndex', not an index URL"
}
$RequirementArgs = @('-m', 'sunnypilot_training.cli.main', 'doctor', '--torch-requirement')
$TorchRequirement = "$(Invoke-NativeCommand -FilePath $VenvPython -ArgumentList $RequirementArgs | Select-Object -Last 1)".Trim()

# 4. torch from that index (another build is removed first: pip keeps a build whose local label sorts higher), then
#    the project with its dependencies (pip keeps the torch build chosen here), then the check
$MatchArgs = @('-m', 'sunnypilot_training.cli.main', 'doctor', '--torch-matches', $TorchIndex)
$SameBuild = "$(Invoke-NativeCommand -FilePath $VenvPython -ArgumentList $MatchArgs | Select-Object -Last 1)".Trim()
if ($SameBuild -eq 'yes') {
    Write-Host "Keeping the installed torch: it is the build of $TorchIndex"
}
else {
    Write-Host "Installing $TorchRequirement from $TorchIndex"
    Invoke-NativeCommand -FilePath $VenvPython -ArgumentList @('-m', 'pip', 'uninstall', '--yes', 'torch')
    Invoke-NativeCommand -FilePath $VenvPython -ArgumentList @('-m', 'pip', 'install', $TorchRequirement, '--index-url', $TorchIndex)
}
try {
    Invoke-NativeCommand -FilePath $VenvPython -ArgumentList @('-m', 'pip', 'install', '--editable', "${RepoRoot}[carla]")
}
catch {
    Write-Warning "Installing with the CARLA client failed ($($_.Exception.Message)); installing without it"
    Invoke-NativeCommand -FilePath $VenvPython -ArgumentList @('-m', 'pip', 'install', '--editable', $RepoRoot)
}
$VerifyArgs = @('-m', 'sunnypilot_training.cli.main', 'doctor', '--torch-verify', $TorchIndex)
$TorchInstalled = "$(Invoke-NativeCommand -FilePath $VenvPython -ArgumentList $VerifyArgs | Select-Object -Last 1)".Trim()
Write-Host "Installed: $TorchInstalled"

# 5. CARLA: the client chosen in step 3a, and CARLA_ROOT (the folder holding the launcher)
if ($Carla) {
    Write-Host "Installing the CARLA $($Carla.version) client ($($Carla.source)): $($Carla.client)"
    Invoke-NativeCommand -FilePath $VenvPython -ArgumentList @('-m', 'pip', 'install', '--force-reinstall', '--no-deps', $Carla.client)
    [Environment]::SetEnvironmentVariable('CARLA_ROOT', $Carla.carla_root, 'User')
    $env:CARLA_ROOT = $Carla.carla_root
    Write-Host "CARLA_ROOT=$($Carla.carla_root) (set for your user; new PowerShell windows see it)"
}

# 6. What the machine offers now
Invoke-NativeCommand -FilePath $VenvPython -ArgumentList @('-m', 'sunnypilot_training.cli.main', 'doctor')
Write-Host ''
Write-Host "Done. In a new PowerShell: Import-Module '$(Join-Path $RepoRoot 'windows\env.psm1')'; Enter-TrainingEnv   (see docs\windows.md)"
