<#
.SYNOPSIS
The whole job in one command: collect, train, export, evaluate, run the closed-loop road tests and optionally
install (thin wrapper over `sptrain pipeline`).

.DESCRIPTION
Finds this repository's virtual environment and runs `python -m sunnypilot_training.cli.main pipeline ...` once,
passing the parameters you give and `--simulator auto` unless -Simulator says otherwise, so that it uses CARLA when it
is installed (a server answers, or CARLA_ROOT names the CARLA folder: the pipeline starts and stops the server) and
says loudly when it falls back to the built-in simulator. Everything else takes the pipeline's defaults (see
`sptrain pipeline --help`), among them -Preset quick: tiny models trained for minutes, which the script says when it
starts; pass -Preset full for the base models (hours on a GPU).
Layout under -OutputDir (default artifacts\pipeline): data\train and data\val (shards), train\ (checkpoints, metrics,
plots), export\ (modeld-named files, unless -ExportDir), evaluation.json, drive\ (the closed-loop road tests:
drive.json, DRIVE.md, path plots and videos of the worst runs; see Test-DrivingModel of windows\env.psm1) and
REPORT.md. Running the same command again reuses what exists: complete shards are skipped and training resumes from
its last checkpoint.

.PARAMETER Scenario
Scenario to drive, e.g. curvy_road (the pipeline's default), highway_follow, urban_intersection.

.PARAMETER TrainEpisodes
Training episodes (default: the preset's).

.PARAMETER ValEpisodes
Held-out validation episodes, on seeds training never uses (default: the preset's).

.PARAMETER OutputDir
Everything goes here (default artifacts\pipeline).

.PARAMETER ExportDir
Where the modeld-named files go (default <OutputDir>\export).

.PARAMETER CheckpointPath
Export this checkpoint instead of training.

.PARAMETER SkipDataCollection
Use the shards already in <OutputDir>\data.

.PARAMETER SkipTraining
Use the last checkpoint in <OutputDir>\train.

.PARAMETER SkipExport
Stop after training (no export, evaluation or road tests).

.PARAMETER SkipDrive
Skip the closed-loop road tests after the evaluation (the report then has no closed-loop section).

.PARAMETER InstallModels
Install the exported models (with backup and smoke test) into -SunnypilotRoot or -ModelsDir.

.PARAMETER KeepCarlaRunning
Leave the CARLA server(s) the pipeline started running afterwards (stop them with Invoke-Carla -Action Stop).

.PARAMETER Simulator
auto (default: CARLA when a server answers or CARLA_ROOT / -CarlaRoot names the CARLA folder, else the built-in
simulator, said loudly), builtin or carla. Exact case.

.PARAMETER SunnypilotRoot
Install target: a sunnypilot checkout, e.g. \\wsl.localhost\Ubuntu\home\me\sunnypilot.

.PARAMETER ModelsDir
Install target: a plain model folder.

.PARAMETER Preset
quick (tiny models, minutes on a CPU; the default) or full (base models, hours on a GPU). Exact case.

.PARAMETER Seed
Base seed (validation uses seed + 1000003).

.PARAMETER CarlaRoot
The CARLA folder (default: the CARLA_ROOT environment variable).

.PARAMETER CarlaPort
RPC port of the (first) CARLA server (default 2000).

.PARAMETER CarlaStartTimeout
Seconds to wait for a CARLA server the pipeline starts (default 180; a first start of CARLA 0.10.0 compiles shaders:
give it 900). Passed as the SPTRAIN_CARLA_START_TIMEOUT_S environment variable for this run only.

.PARAMETER Overrides
Hydra overrides passed to training, key=value each, e.g. 'training.vision_epochs=8', 'model=base'.

.EXAMPLE
.\windows\run_full_training.ps1

.EXAMPLE
.\windows\run_full_training.ps1 -Scenario urban_intersection -TrainEpisodes 40 -ValEpisodes 4 -OutputDir D:\runs\urban

.EXAMPLE
.\windows\run_full_training.ps1 -Preset full -Simulator carla -Scenario urban_intersection -OutputDir D:\runs\urban -KeepCarlaRunning -CarlaStartTimeout 900

.EXAMPLE
.\windows\run_full_training.ps1 -Preset full -OutputDir D:\runs\curvy -SkipDrive

.EXAMPLE
.\windows\run_full_training.ps1 -OutputDir D:\runs\urban -SkipDataCollection -SkipTraining -InstallModels -SunnypilotRoot \\wsl.localhost\Ubuntu\home\me\sunnypilot
#>
[CmdletBinding()]
param(
    [ValidatePattern('^[a-z][a-z0-9_]*$')][string]$Scenario,
    [ValidateRange(1, 1000000)][int]$TrainEpisodes,
    [ValidateRange(1, 1000000)][int]$ValEpisodes,
    [ValidateNotNullOrEmpty()][string]$OutputDir,
    [ValidateNotNullOrEmpty()][string]$ExportDir,
    [ValidateNotNullOrEmpty()][string]$CheckpointPath,
    [switch]$SkipDataCollection,
    [switch]$SkipTraining,
    [switch]$SkipExport,
    [switch]$SkipDrive,
    [switch]$InstallModels,
    [switch]$KeepCarlaRunning,
    [ValidateSet('auto', 'builtin', 'carla', IgnoreCase = $false)][string]$Simulator = 'auto',
    [ValidateNotNullOrEmpty()][string]$SunnypilotRoot,
    [ValidateNotNullOrEmpty()][string]$ModelsDir,
    [ValidateSet('quick', 'full', IgnoreCase = $false)][string]$Preset,
    [ValidateRange(0, 2147483647)][int]$Seed,
    [ValidateNotNullOrEmpty()][string]$CarlaRoot,
    [ValidateRange(1024, 65535)][int]$CarlaPort,
    [ValidateRange(1, 86400)][int]$CarlaStartTimeout,
    [ValidatePattern('^(\+\+|\+|~)?[A-Za-z_][\w.@/-]*(=.*)?$')][string[]]$Overrides
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

Import-Module (Join-Path $PSScriptRoot 'common.psm1') -Force

$Python = Get-TrainingPython

$CliArgs = @('-m', 'sunnypilot_training.cli.main', 'pipeline')
if ($PSBoundParameters.ContainsKey('Scenario')) { $CliArgs += @('--scenario', $Scenario) }
if ($PSBoundParameters.ContainsKey('TrainEpisodes')) { $CliArgs += @('--train-episodes', $TrainEpisodes) }
if ($PSBoundParameters.ContainsKey('ValEpisodes')) { $CliArgs += @('--val-episodes', $ValEpisodes) }
if ($PSBoundParameters.ContainsKey('OutputDir')) { $CliArgs += @('--output-dir', $OutputDir) }
if ($PSBoundParameters.ContainsKey('ExportDir')) { $CliArgs += @('--export-dir', $ExportDir) }
if ($PSBoundParameters.ContainsKey('CheckpointPath')) { $CliArgs += @('--checkpoint', $CheckpointPath) }
if ($SkipDataCollection) { $CliArgs += '--skip-collect' }
if ($SkipTraining) { $CliArgs += '--skip-train' }
if ($SkipExport) { $CliArgs += '--skip-export' }
if ($SkipDrive) { $CliArgs += '--skip-drive' }
if ($InstallModels) { $CliArgs += '--install' }
if ($KeepCarlaRunning) { $CliArgs += '--keep-carla-running' }
# auto unless given: CARLA when it is installed
$CliArgs += @('--simulator', $Simulator)
if ($PSBoundParameters.ContainsKey('SunnypilotRoot')) { $CliArgs += @('--sunnypilot-root', $SunnypilotRoot) }
if ($PSBoundParameters.ContainsKey('ModelsDir')) { $CliArgs += @('--models-dir', $ModelsDir) }
if ($PSBoundParameters.ContainsKey('Preset')) { $CliArgs += @('--preset', $Preset) }
if ($PSBoundParameters.ContainsKey('Seed')) { $CliArgs += @('--seed', $Seed) }
if ($PSBoundParameters.ContainsKey('CarlaRoot')) { $CliArgs += @('--carla-root', $CarlaRoot) }
if ($PSBoundParameters.ContainsKey('CarlaPort')) { $CliArgs += @('--carla-port', $CarlaPort) }
if ($PSBoundParameters.ContainsKey('Overrides')) { $CliArgs += $Overrides }  # trailing positional key=value

if (-not $PSBoundParameters.ContainsKey('Preset')) {
    Write-Host 'Preset quick (the default): tiny models, a few epochs, minutes on a CPU. For the base models pass -Preset full (hours on a GPU).'
}
$OldStartTimeout = $env:SPTRAIN_CARLA_START_TIMEOUT_S
if ($PSBoundParameters.ContainsKey('CarlaStartTimeout')) { $env:SPTRAIN_CARLA_START_TIMEOUT_S = "$CarlaStartTimeout" }
$Started = Get-Date
try {
    Invoke-NativeCommand -FilePath $Python -ArgumentList $CliArgs
}
finally {
    $env:SPTRAIN_CARLA_START_TIMEOUT_S = $OldStartTimeout
}
$Minutes = ((Get-Date) - $Started).TotalMinutes
Write-Host ('Pipeline finished in {0:N1} min; REPORT.md and evaluation.json are in the output folder (path above).' -f $Minutes)
