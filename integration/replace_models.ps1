<#
.SYNOPSIS
Installs exported driving models into a sunnypilot checkout or model folder (thin wrapper over `sptrain install`).

.DESCRIPTION
Finds this repository's virtual environment and runs
`python -m sunnypilot_training.cli.main install ...` with the given files and target. All behaviour lives in
Python: validation of the files, the backup into <models dir>\.sptrain_backups\<UTC timestamp>\, atomic copies,
sha256 checks, the smoke test and the automatic undo on failure. openpilot does not run natively on Windows: point
-SunnypilotRoot at a checkout in WSL (\\wsl$\Ubuntu\home\me\sunnypilot or \\wsl.localhost\Ubuntu\...) or on a
network share.

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

.PARAMETER ModelsDir
A plain model folder instead of a checkout (created if missing).

.PARAMETER DryRun
Validate and print the plan; change nothing.

.PARAMETER Restore
Undo the newest install in the target (the file parameters are not used).

.EXAMPLE
.\integration\replace_models.ps1 -VisionTinygrad out\driving_vision_tinygrad.pkl -VisionMetadata out\driving_vision_metadata.pkl -PolicyTinygrad out\driving_policy_tinygrad.pkl -PolicyMetadata out\driving_policy_metadata.pkl -SunnypilotRoot \\wsl$\Ubuntu\home\me\sunnypilot -DryRun

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
    [Parameter(Mandatory = $true, ParameterSetName = 'Checkout')][ValidateNotNullOrEmpty()][string]$SunnypilotRoot,
    [Parameter(Mandatory = $true, ParameterSetName = 'ModelsDir')][ValidateNotNullOrEmpty()][string]$ModelsDir,
    [switch]$DryRun,
    [switch]$Restore
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

function Invoke-NativeCommand {
    <#
    .SYNOPSIS
    Runs a native program with an argument array and throws when it exits non-zero.
    .PARAMETER FilePath
    The program to run.
    .PARAMETER ArgumentList
    Its arguments, one array element each (no quoting needed).
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true)][ValidateNotNullOrEmpty()][string]$FilePath,
        [string[]]$ArgumentList = @()
    )
    # Windows PowerShell 5.1 turns a native program's stderr into terminating errors under 'Stop' when output is
    # redirected: only the exit code decides here.
    $ErrorActionPreference = 'Continue'
    # A trailing backslash before the closing quote of an argument with spaces escapes the quote on 5.1: drop it.
    $Arguments = @($ArgumentList | ForEach-Object { if ("$_" -match '^(.*[^:\\])\\+$') { $Matches[1] } else { "$_" } })
    & $FilePath @Arguments
    if ($LASTEXITCODE -ne 0) {
        throw "$FilePath exited with code $LASTEXITCODE (see the message above)"
    }
}

$RepoRoot = Split-Path -Parent $PSScriptRoot
$Candidates = @(
    (Join-Path $RepoRoot 'venv\Scripts\python.exe'),
    (Join-Path $RepoRoot '.venv\Scripts\python.exe'),
    (Join-Path $RepoRoot '.venv/bin/python'),
    (Join-Path $RepoRoot 'venv/bin/python')
)
if ($env:VIRTUAL_ENV) {  # an installed package (no repository venv beside it): the active environment
    $Candidates += @((Join-Path $env:VIRTUAL_ENV 'Scripts\python.exe'), (Join-Path $env:VIRTUAL_ENV 'bin/python'))
}
$Python = $Candidates | Where-Object { Test-Path -LiteralPath $_ -PathType Leaf } | Select-Object -First 1
if (-not $Python) {
    throw "No virtual environment found under $RepoRoot (looked for venv\Scripts\python.exe and .venv); create it as described in README.md"
}

$CliArgs = @('-m', 'sunnypilot_training.cli.main', 'install')
$FileFlags = [ordered]@{
    VisionTinygrad = '--vision-tinygrad'
    VisionMetadata = '--vision-metadata'
    PolicyTinygrad = '--policy-tinygrad'
    PolicyMetadata = '--policy-metadata'
    VisionOnnx     = '--vision-onnx'
    PolicyOnnx     = '--policy-onnx'
}
foreach ($Name in $FileFlags.Keys) {
    if ($PSBoundParameters.ContainsKey($Name)) {
        $CliArgs += @($FileFlags[$Name], $PSBoundParameters[$Name])
    }
}
if ($PSCmdlet.ParameterSetName -eq 'Checkout') {
    $CliArgs += @('--sunnypilot-root', $SunnypilotRoot)
}
else {
    $CliArgs += @('--models-dir', $ModelsDir)
}
if ($DryRun) { $CliArgs += '--dry-run' }
if ($Restore) { $CliArgs += '--restore' }

Invoke-NativeCommand -FilePath $Python -ArgumentList $CliArgs
