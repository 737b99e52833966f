<#
.SYNOPSIS
PowerShell functions over the sptrain command line: virtual environment, CARLA, collect, train, export, drive, install.

.DESCRIPTION
Import this module to work with sunnypilot-training from a PowerShell prompt. Every function finds this repository's
virtual environment (venv\ or .venv\, created by windows\setup_env.ps1), runs
`python -m sunnypilot_training.cli.main <command> ...` with an argument array, and throws when the command fails;
the environment lookup and the program runner come from windows\common.psm1, which this module imports.
All behaviour lives in Python; the functions only translate parameters into sptrain flags.

.EXAMPLE
Import-Module .\windows\env.psm1
Enter-TrainingEnv
Test-TrainingEnv
#>

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

Import-Module (Join-Path $PSScriptRoot 'common.psm1') -Force

function Enter-TrainingEnv {
    <#
    .SYNOPSIS
    Activates the repository's virtual environment in the current PowerShell session.

    .DESCRIPTION
    Puts the virtual environment's Scripts folder first on PATH and sets VIRTUAL_ENV, so that `sptrain`, `python`
    and `pip` are the environment's own for the rest of this session. Nothing outside the session changes.

    .EXAMPLE
    Enter-TrainingEnv; sptrain doctor
    #>
    [CmdletBinding()]
    param()
    $Python = Get-TrainingPython
    $Scripts = Split-Path -Parent $Python
    $env:VIRTUAL_ENV = Split-Path -Parent $Scripts
    $Rest = @($env:PATH -split [IO.Path]::PathSeparator | Where-Object { $_ -and ($_ -ne $Scripts) })
    $env:PATH = (@($Scripts) + $Rest) -join [IO.Path]::PathSeparator
    Write-Host "Virtual environment active: $env:VIRTUAL_ENV (sptrain, python and pip come from $Scripts)"
}

function Invoke-Carla {
    <#
    .SYNOPSIS
    Starts (the default), stops or reports the local CARLA server(s) (sptrain carla start|stop|status).

    .DESCRIPTION
    Runs `sptrain carla <action> --port P` with the given options. Start launches each server that does not answer
    yet, off-screen, and waits until it does (a server that already answers is left as it is and said so); when it
    cannot start one it says why (no CARLA folder, no launcher in it, the server exited or did not answer in time,
    with its log). The server is found in -CarlaRoot or the CARLA_ROOT environment variable (set by
    windows\setup_env.ps1 -CarlaRoot), or one folder down (WindowsNoEditor\CarlaUE4.exe of the 0.9.x zips,
    Carla-0.10.0-Win64-Shipping\CarlaUnreal.exe). Each server uses its RPC port and the two ports after it; with
    -Workers N, N servers start on ports P, P+3, P+6, ...

    .PARAMETER Action
    Start (default), Stop or Status.

    .PARAMETER Port
    RPC port of the (first) server (Start and Status default to 2000; Stop without -Port stops every server
    sptrain started).

    .PARAMETER CarlaRoot
    The CARLA folder (holding CarlaUE4.exe or CarlaUnreal.exe, or a folder that does); default: the CARLA_ROOT
    environment variable.

    .PARAMETER Workers
    How many servers to start (one per parallel collector).

    .PARAMETER Quality
    Rendering quality: Low (fast) or Epic (exact case).

    .PARAMETER Timeout
    Seconds Start waits for a server to answer (default 180; a first start of CARLA 0.10.0 compiles shaders for
    many minutes: give it 900).

    .EXAMPLE
    Invoke-Carla -Port 2000

    .EXAMPLE
    Invoke-Carla -Action Start -Quality Low -Timeout 900

    .EXAMPLE
    Invoke-Carla -Action Stop -Port 2000
    #>
    [CmdletBinding()]
    param(
        [Parameter(Position = 0)][ValidateSet('Start', 'Stop', 'Status')][string]$Action = 'Start',
        [ValidateRange(1024, 65535)][int]$Port,
        [ValidateNotNullOrEmpty()][string]$CarlaRoot,
        [ValidateRange(1, 16)][int]$Workers,
        [ValidateSet('Low', 'Epic', IgnoreCase = $false)][string]$Quality,
        [ValidateRange(1, 86400)][int]$Timeout
    )
    $CliArgs = @('-m', 'sunnypilot_training.cli.main', 'carla', $Action.ToLowerInvariant())
    if ($PSBoundParameters.ContainsKey('Port')) { $CliArgs += @('--port', $Port) }
    if ($PSBoundParameters.ContainsKey('CarlaRoot')) { $CliArgs += @('--carla-root', $CarlaRoot) }
    if ($PSBoundParameters.ContainsKey('Workers')) { $CliArgs += @('--workers', $Workers) }
    if ($PSBoundParameters.ContainsKey('Quality')) { $CliArgs += @('--quality', $Quality) }
    if ($PSBoundParameters.ContainsKey('Timeout')) { $CliArgs += @('--timeout', $Timeout) }
    Invoke-NativeCommand -FilePath (Get-TrainingPython) -ArgumentList $CliArgs
}

function Invoke-Collector {
    <#
    .SYNOPSIS
    Simulates driving episodes into Zarr shards (sptrain collect).

    .DESCRIPTION
    Runs `sptrain collect --simulator S --scenario X --episodes N --output DIR` plus the options given. Complete
    shards are skipped, so running the same command again only collects what is missing. CARLA server(s) must be
    running (Invoke-Carla -Port P starts one): with -Simulator auto, the default, the collector uses CARLA when a
    server answers on -Port and otherwise the built-in simulator, with a warning that says why.

    .PARAMETER Scenario
    Scenario name, e.g. curvy_road, highway_follow, urban_intersection (`sptrain collect --help` lists them).

    .PARAMETER Episodes
    How many episodes to simulate.

    .PARAMETER Output
    Folder the shards go to (one per episode).

    .PARAMETER Simulator
    auto (default: CARLA when a server answers, else the built-in simulator with a warning), builtin (no install
    needed) or carla (fails when no server answers). Exact case.

    .PARAMETER Port
    CARLA RPC port of the (first) server (default 2000).

    .PARAMETER Workers
    Parallel collectors (processes; with CARLA one server each).

    .PARAMETER Seed
    Base seed: episode k of seed S is always the same episode (default 0). Validation data needs seeds of its own:
    without -Seed, an -Output folder named val (or valid, validation) gets seed 1000003, the pipeline's validation
    seed, with a warning.

    .EXAMPLE
    Invoke-Collector -Scenario curvy_road -Episodes 8 -Output data\train

    .EXAMPLE
    Invoke-Collector -Scenario curvy_road -Episodes 2 -Output data\val

    .EXAMPLE
    Invoke-Collector -Scenario urban_intersection -Episodes 2 -Output data\val -Simulator carla -Seed 1000003
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true)][ValidatePattern('^[a-z][a-z0-9_]*$')][string]$Scenario,
        [Parameter(Mandatory = $true)][ValidateRange(1, 1000000)][int]$Episodes,
        [Parameter(Mandatory = $true)][ValidateNotNullOrEmpty()][string]$Output,
        [ValidateSet('auto', 'builtin', 'carla', IgnoreCase = $false)][string]$Simulator = 'auto',
        [ValidateRange(1024, 65535)][int]$Port,
        [ValidateRange(1, 64)][int]$Workers,
        [ValidateRange(0, 2147483647)][int]$Seed
    )
    $CliArgs = @('-m', 'sunnypilot_training.cli.main', 'collect', '--simulator', $Simulator, '--scenario', $Scenario,
        '--episodes', $Episodes, '--output', $Output)
    if ($PSBoundParameters.ContainsKey('Port')) { $CliArgs += @('--port', $Port) }
    if ($PSBoundParameters.ContainsKey('Workers')) { $CliArgs += @('--workers', $Workers) }
    if ($PSBoundParameters.ContainsKey('Seed')) { $CliArgs += @('--seed', $Seed) }
    Invoke-NativeCommand -FilePath (Get-TrainingPython) -ArgumentList $CliArgs
}

function Invoke-Trainer {
    <#
    .SYNOPSIS
    Trains the vision model and the diffusion policy (sptrain train with Hydra overrides).

    .DESCRIPTION
    Runs `sptrain train --data <Data> --output-dir <Output> [--resume]` plus the overrides (the CLI turns the
    folders into quoted Hydra overrides). Checkpoints go to <Output>\checkpoints\epoch_XXXX.pt, with metrics.jsonl,
    tensorboard\, plots\ and the resolved config.yaml beside them. -Resume continues the newest checkpoint in
    <Output>\checkpoints exactly (training.resume=true checkpoint=latest).

    .PARAMETER Data
    Folder holding train\ and val\ shard folders (as written by two Invoke-Collector calls).

    .PARAMETER Output
    Training output folder (output_dir).

    .PARAMETER Resume
    Continue from the newest checkpoint in <Output>\checkpoints.

    .PARAMETER Overrides
    Hydra overrides, key=value each (see training\configs\default.yaml), e.g. model=base, training.vision_epochs=8.

    .EXAMPLE
    Invoke-Trainer -Data data -Output artifacts\run1 -Overrides 'training.vision_epochs=4', 'training.policy_epochs=6'

    .EXAMPLE
    Invoke-Trainer -Data data -Output artifacts\run1 -Resume
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true)][ValidateNotNullOrEmpty()][string]$Data,
        [Parameter(Mandatory = $true)][ValidateNotNullOrEmpty()][string]$Output,
        [switch]$Resume,
        [ValidatePattern('^(\+\+|\+|~)?[A-Za-z_][\w.@/-]*(=.*)?$')][string[]]$Overrides = @()
    )
    $CliArgs = @('-m', 'sunnypilot_training.cli.main', 'train', '--data', $Data, '--output-dir', $Output)
    if ($Resume) { $CliArgs += '--resume' }
    $CliArgs += $Overrides
    Invoke-NativeCommand -FilePath (Get-TrainingPython) -ArgumentList $CliArgs
}

function Export-DrivingModel {
    <#
    .SYNOPSIS
    Exports a checkpoint into modeld's files (sptrain export).

    .DESCRIPTION
    Runs `sptrain export CHECKPOINT --out-dir DIR`: driving_vision.onnx, driving_vision_tinygrad.pkl,
    driving_vision_metadata.pkl and the same for driving_policy, each checked (torch vs onnxruntime vs tinygrad)
    before it is moved into the folder.

    .PARAMETER Checkpoint
    A training checkpoint, e.g. artifacts\run1\checkpoints\epoch_0010.pt, or a training output folder (its newest
    checkpoint is exported).

    .PARAMETER ExportDir
    Folder the files are written to (created).

    .EXAMPLE
    Export-DrivingModel -Checkpoint artifacts\run1\checkpoints\epoch_0010.pt -ExportDir artifacts\run1\export

    .EXAMPLE
    Export-DrivingModel -Checkpoint artifacts\run1 -ExportDir artifacts\run1\export
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true)][ValidateNotNullOrEmpty()][string]$Checkpoint,
        [Parameter(Mandatory = $true)][ValidateNotNullOrEmpty()][string]$ExportDir
    )
    $CliArgs = @('-m', 'sunnypilot_training.cli.main', 'export', $Checkpoint, '--out-dir', $ExportDir)
    Invoke-NativeCommand -FilePath (Get-TrainingPython) -ArgumentList $CliArgs
}

function Test-DrivingModel {
    <#
    .SYNOPSIS
    Drives an exported model, or a reference driver, through the closed-loop road tests (sptrain drive).

    .DESCRIPTION
    Runs `sptrain drive EXPORT_DIR --suite S --out DIR` (or `--driver NAME` instead of the export folder) plus the
    options given: the built-in simulator renders what the car sees, the model runs as modeld runs it, openpilot-style
    controls steer the car, and so on, every 50 ms. Writes drive.json (every number), DRIVE.md (the summary table with
    plots and videos), a top-down plot of the paths per suite and GIFs of the worst runs into -Output. The suites and
    their pass criteria are described in docs\driving.md. The same command drives the same roads, traffic and lighting.

    .PARAMETER ExportDir
    The model to test: a folder written by Export-DrivingModel / sptrain export.

    .PARAMETER Driver
    A reference driver instead of a model: expert, straight or constant-curvature. Exact case.

    .PARAMETER Suite
    Which suite: lane_keep, lane_change, follow or all (default all). Exact case.

    .PARAMETER Runs
    Only the first N runs of each suite (default: all of them).

    .PARAMETER Seed
    Seed of the runs' episodes (default 0).

    .PARAMETER Seconds
    Cut every run to this many seconds (default: the suite's length).

    .PARAMETER Runtime
    onnxruntime (default) runs the ONNX files, tinygrad the tinygrad pickles. Exact case.

    .PARAMETER Workers
    Runs in parallel processes (default 1).

    .PARAMETER Videos
    GIFs of the worst runs per suite (default 2; 0 for none).

    .PARAMETER Output
    Folder for drive.json, DRIVE.md, the plots and the videos (created).

    .EXAMPLE
    Test-DrivingModel -ExportDir runs\urban\export -Output runs\urban\drive

    .EXAMPLE
    Test-DrivingModel -Driver expert -Suite lane_keep -Runs 6 -Output runs\drive-expert

    .EXAMPLE
    Test-DrivingModel -ExportDir runs\urban\export -Suite lane_change -Runtime tinygrad -Workers 2 -Output runs\urban\drive-tinygrad
    #>
    [CmdletBinding(DefaultParameterSetName = 'Model')]
    param(
        [Parameter(Mandatory = $true, Position = 0, ParameterSetName = 'Model')]
        [ValidateNotNullOrEmpty()][string]$ExportDir,
        [Parameter(Mandatory = $true, ParameterSetName = 'Driver')]
        [ValidateSet('expert', 'straight', 'constant-curvature', IgnoreCase = $false)][string]$Driver,
        [ValidateSet('lane_keep', 'lane_change', 'follow', 'all', IgnoreCase = $false)][string]$Suite = 'all',
        [ValidateRange(1, 1000000)][int]$Runs,
        [ValidateRange(0, 2147483647)][int]$Seed,
        [ValidateRange(0.1, 3600.0)][double]$Seconds,
        [ValidateSet('onnxruntime', 'tinygrad', IgnoreCase = $false)][string]$Runtime,
        [ValidateRange(1, 64)][int]$Workers,
        [ValidateRange(0, 100)][int]$Videos,
        [Parameter(Mandatory = $true)][ValidateNotNullOrEmpty()][string]$Output
    )
    $CliArgs = @('-m', 'sunnypilot_training.cli.main', 'drive')
    if ($PSCmdlet.ParameterSetName -eq 'Model') {
        $CliArgs += @($ExportDir)
    }
    else {
        $CliArgs += @('--driver', $Driver)
    }
    $CliArgs += @('--suite', $Suite, '--out', $Output)
    if ($PSBoundParameters.ContainsKey('Runs')) { $CliArgs += @('--runs', $Runs) }
    if ($PSBoundParameters.ContainsKey('Seed')) { $CliArgs += @('--seed', $Seed) }
    if ($PSBoundParameters.ContainsKey('Seconds')) { $CliArgs += @('--seconds', $Seconds) }
    if ($PSBoundParameters.ContainsKey('Runtime')) { $CliArgs += @('--runtime', $Runtime) }
    if ($PSBoundParameters.ContainsKey('Workers')) { $CliArgs += @('--workers', $Workers) }
    if ($PSBoundParameters.ContainsKey('Videos')) { $CliArgs += @('--videos', $Videos) }
    Invoke-NativeCommand -FilePath (Get-TrainingPython) -ArgumentList $CliArgs
}

function Install-DrivingModel {
    <#
    .SYNOPSIS
    Installs exported models into a sunnypilot checkout or a model folder (sptrain install).

    .DESCRIPTION
    Runs `sptrain install --from-dir DIR --sunnypilot-root ROOT` (or --models-dir, or the files one by one with
    --vision-tinygrad ... --policy-onnx): validates the files, backs up what they replace into
    <models dir>\.sptrain_backups\<UTC timestamp>\, copies atomically, runs a smoke test and puts the originals back
    on any failure. openpilot does not run on Windows: point -SunnypilotRoot at a checkout in WSL
    (\\wsl.localhost\Ubuntu\home\me\sunnypilot) or on a share. Without -SunnypilotRoot and -ModelsDir the target is
    the SUNNYPILOT_ROOT environment variable, else the current folder when it is a checkout (it holds
    selfdrive\modeld); otherwise it stops and says what to pass. integration\replace_models.ps1 calls this function.

    .PARAMETER ExportDir
    Folder written by Export-DrivingModel / sptrain export (not needed with -Restore or with the file parameters).

    .PARAMETER VisionTinygrad
    Path of driving_vision_tinygrad.pkl (instead of -ExportDir, with the other file parameters).

    .PARAMETER VisionMetadata
    Path of driving_vision_metadata.pkl.

    .PARAMETER PolicyTinygrad
    Path of driving_policy_tinygrad.pkl.

    .PARAMETER PolicyMetadata
    Path of driving_policy_metadata.pkl.

    .PARAMETER VisionOnnx
    Optional path of driving_vision.onnx; installed too, so a comma device can rebuild its own pickle.

    .PARAMETER PolicyOnnx
    Optional path of driving_policy.onnx.

    .PARAMETER SunnypilotRoot
    Root of a sunnypilot/openpilot checkout; the files go to selfdrive\modeld\models\. Default: SUNNYPILOT_ROOT, else
    the current folder when it is a checkout.

    .PARAMETER ModelsDir
    A plain model folder instead of a checkout (created if missing).

    .PARAMETER DryRun
    Validate and print the plan; change nothing.

    .PARAMETER Restore
    Undo the newest install in the target.

    .EXAMPLE
    Install-DrivingModel -ExportDir artifacts\run1\export -SunnypilotRoot \\wsl.localhost\Ubuntu\home\me\sunnypilot -DryRun

    .EXAMPLE
    $env:SUNNYPILOT_ROOT = '\\wsl.localhost\Ubuntu\home\me\sunnypilot'; Install-DrivingModel -ExportDir artifacts\run1\export

    .EXAMPLE
    Install-DrivingModel -VisionTinygrad out\driving_vision_tinygrad.pkl -VisionMetadata out\driving_vision_metadata.pkl -PolicyTinygrad out\driving_policy_tinygrad.pkl -PolicyMetadata out\driving_policy_metadata.pkl -ModelsDir D:\models

    .EXAMPLE
    Install-DrivingModel -SunnypilotRoot \\wsl.localhost\Ubuntu\home\me\sunnypilot -Restore
    #>
    [CmdletBinding(DefaultParameterSetName = 'Checkout')]
    param(
        [ValidateNotNullOrEmpty()][string]$ExportDir,
        [ValidateNotNullOrEmpty()][string]$VisionTinygrad,
        [ValidateNotNullOrEmpty()][string]$VisionMetadata,
        [ValidateNotNullOrEmpty()][string]$PolicyTinygrad,
        [ValidateNotNullOrEmpty()][string]$PolicyMetadata,
        [ValidateNotNullOrEmpty()][string]$VisionOnnx,
        [ValidateNotNullOrEmpty()][string]$PolicyOnnx,
        [Parameter(ParameterSetName = 'Checkout')][ValidateNotNullOrEmpty()][string]$SunnypilotRoot,
        [Parameter(Mandatory = $true, ParameterSetName = 'ModelsDir')][ValidateNotNullOrEmpty()][string]$ModelsDir,
        [switch]$DryRun,
        [switch]$Restore
    )
    if ($PSCmdlet.ParameterSetName -eq 'Checkout' -and -not $PSBoundParameters.ContainsKey('SunnypilotRoot')) {
        $Here = (Get-Location).ProviderPath
        if ($env:SUNNYPILOT_ROOT) {
            $SunnypilotRoot = $env:SUNNYPILOT_ROOT
            Write-Host "Target: SUNNYPILOT_ROOT=$SunnypilotRoot"
        }
        elseif (Test-Path -LiteralPath (Join-Path $Here 'selfdrive\modeld') -PathType Container) {
            $SunnypilotRoot = $Here
            Write-Host "Target: the checkout in the current folder, $SunnypilotRoot"
        }
        else {
            throw "No install target: pass -SunnypilotRoot <the checkout's root, the folder holding selfdrive\> (e.g. \\wsl.localhost\Ubuntu\home\me\sunnypilot) or -ModelsDir <a model folder>, set `$env:SUNNYPILOT_ROOT to the checkout, or run this from the checkout's root ($Here holds no selfdrive\modeld)"
        }
    }
    $CliArgs = @('-m', 'sunnypilot_training.cli.main', 'install')
    if ($PSBoundParameters.ContainsKey('ExportDir')) { $CliArgs += @('--from-dir', $ExportDir) }
    if ($PSBoundParameters.ContainsKey('VisionTinygrad')) { $CliArgs += @('--vision-tinygrad', $VisionTinygrad) }
    if ($PSBoundParameters.ContainsKey('VisionMetadata')) { $CliArgs += @('--vision-metadata', $VisionMetadata) }
    if ($PSBoundParameters.ContainsKey('PolicyTinygrad')) { $CliArgs += @('--policy-tinygrad', $PolicyTinygrad) }
    if ($PSBoundParameters.ContainsKey('PolicyMetadata')) { $CliArgs += @('--policy-metadata', $PolicyMetadata) }
    if ($PSBoundParameters.ContainsKey('VisionOnnx')) { $CliArgs += @('--vision-onnx', $VisionOnnx) }
    if ($PSBoundParameters.ContainsKey('PolicyOnnx')) { $CliArgs += @('--policy-onnx', $PolicyOnnx) }
    if ($PSCmdlet.ParameterSetName -eq 'Checkout') {
        $CliArgs += @('--sunnypilot-root', $SunnypilotRoot)
    }
    else {
        $CliArgs += @('--models-dir', $ModelsDir)
    }
    if ($DryRun) { $CliArgs += '--dry-run' }
    if ($Restore) { $CliArgs += '--restore' }
    Invoke-NativeCommand -FilePath (Get-TrainingPython) -ArgumentList $CliArgs
}

function Test-TrainingEnv {
    <#
    .SYNOPSIS
    Reports what this machine offers the toolkit (sptrain doctor).

    .DESCRIPTION
    Runs `sptrain doctor`: Python, torch and the CUDA device with its compute capability, tinygrad and clang, the
    CARLA client and CARLA_ROOT, free disk. Warnings name what is missing; it fails only when the package is broken.

    .PARAMETER OutputDir
    Where outputs will go (free disk is checked there; default artifacts).

    .EXAMPLE
    Test-TrainingEnv

    .EXAMPLE
    Test-TrainingEnv -OutputDir D:\runs
    #>
    [CmdletBinding()]
    param(
        [ValidateNotNullOrEmpty()][string]$OutputDir
    )
    $CliArgs = @('-m', 'sunnypilot_training.cli.main', 'doctor')
    if ($PSBoundParameters.ContainsKey('OutputDir')) { $CliArgs += @('--output-dir', $OutputDir) }
    Invoke-NativeCommand -FilePath (Get-TrainingPython) -ArgumentList $CliArgs
}

Export-ModuleMember -Function @(
    'Enter-TrainingEnv',
    'Invoke-Carla',
    'Invoke-Collector',
    'Invoke-Trainer',
    'Export-DrivingModel',
    'Test-DrivingModel',
    'Install-DrivingModel',
    'Test-TrainingEnv'
)
