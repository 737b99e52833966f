<#
.SYNOPSIS
Installs exported driving models into a sunnypilot checkout or model folder (thin wrapper over `sptrain install`).

.DESCRIPTION
An entry point over Install-DrivingModel of windows\env.psm1, which takes the same parameters: it finds this
repository's virtual environment and runs `python -m sunnypilot_training.cli.main install ...` with the given files
and target. All behaviour lives in Python: validation of the files, the backup into
<models dir>\.sptrain_backups\<UTC timestamp>\, atomic copies, sha256 checks, the smoke test and the automatic undo
on failure. openpilot does not run natively on Windows: point -SunnypilotRoot at a checkout in WSL
(\\wsl$\Ubuntu\home\me\sunnypilot or \\wsl.localhost\Ubuntu\...) or on a network share. Given neither
-SunnypilotRoot nor -ModelsDir, it installs into SUNNYPILOT_ROOT (an environment variable), else into the current
folder when that is a checkout (it holds selfdrive\modeld), else it stops and says exactly what to pass.

.PARAMETER VisionTinygrad
Path of driving_vision_tinygrad.pkl (written by `sptrain export`).

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
Root of a sunnypilot/openpilot checkout (the folder holding selfdrive\); files go to selfdrive\modeld\models\.
Default: the SUNNYPILOT_ROOT environment variable, else the current folder when it is a checkout.

.PARAMETER ModelsDir
A plain model folder instead of a checkout (created if missing).

.PARAMETER DryRun
Validate and print the plan; change nothing.

.PARAMETER Restore
Undo the newest install in the target (the file parameters are not used).

.EXAMPLE
.\integration\replace_models.ps1 -VisionTinygrad out\driving_vision_tinygrad.pkl -VisionMetadata out\driving_vision_metadata.pkl -PolicyTinygrad out\driving_policy_tinygrad.pkl -PolicyMetadata out\driving_policy_metadata.pkl -SunnypilotRoot \\wsl$\Ubuntu\home\me\sunnypilot -DryRun

.EXAMPLE
$env:SUNNYPILOT_ROOT = '\\wsl.localhost\Ubuntu\home\me\sunnypilot'
.\integration\replace_models.ps1 -VisionTinygrad out\driving_vision_tinygrad.pkl -VisionMetadata out\driving_vision_metadata.pkl -PolicyTinygrad out\driving_policy_tinygrad.pkl -PolicyMetadata out\driving_policy_metadata.pkl

.EXAMPLE
.\integration\replace_models.ps1 -SunnypilotRoot \\wsl.localhost\Ubuntu\home\me\sunnypilot -Restore
#>
[CmdletBinding(DefaultParameterSetName = 'Checkout')]
param(
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

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

Import-Module (Join-Path $PSScriptRoot '..\windows\common.psm1') -Force
Import-Module (Join-Path $PSScriptRoot '..\windows\env.psm1') -Force

# The parameters are Install-DrivingModel's own (names, types, parameter sets): pass them on as given.
Install-DrivingModel @PSBoundParameters
