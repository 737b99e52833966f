<#
.SYNOPSIS
The helpers every sunnypilot-training PowerShell script shares: the repository root, the virtual environment's
python, and the one function that runs a native program.

.DESCRIPTION
Imported by windows\env.psm1, windows\setup_env.ps1, windows\run_full_training.ps1 and
integration\replace_models.ps1, each with
`Import-Module (Join-Path $PSScriptRoot 'common.psm1') -Force` (or '..\windows\common.psm1'), so every script still
runs on its own. Importing it runs nothing and needs no virtual environment: windows\setup_env.ps1 uses it before
the environment exists (Get-TrainingPython is called only by the scripts that need the environment).

.EXAMPLE
Import-Module (Join-Path $PSScriptRoot 'common.psm1') -Force
Invoke-NativeCommand -FilePath (Get-TrainingPython) -ArgumentList @('-m', 'sunnypilot_training.cli.main', 'doctor')
#>

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

function Get-RepositoryRoot {
    <#
    .SYNOPSIS
    The root folder of this repository (the folder holding windows\ and integration\).
    .DESCRIPTION
    The parent of the folder this module lives in, so it is the same whichever script imported the module.
    .EXAMPLE
    $RepoRoot = Get-RepositoryRoot
    #>
    [CmdletBinding()]
    param()
    return Split-Path -Parent $PSScriptRoot
}

function Invoke-NativeCommand {
    <#
    .SYNOPSIS
    Runs a native program with an argument array and throws when it exits non-zero.
    .DESCRIPTION
    The one place that starts a program: its output goes down the pipeline, a non-zero $LASTEXITCODE becomes an
    exception that names the program and the code.
    .PARAMETER FilePath
    The program to run.
    .PARAMETER ArgumentList
    Its arguments, one array element each (no quoting needed).
    .EXAMPLE
    Invoke-NativeCommand -FilePath $Python -ArgumentList @('-m', 'sunnypilot_training.cli.main', 'doctor')
    .EXAMPLE
    Invoke-NativeCommand -FilePath $Python -ArgumentList @('-m', 'pip', 'install', '--upgrade', 'pip')
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

function Get-TrainingPython {
    <#
    .SYNOPSIS
    The python.exe of this repository's virtual environment.
    .DESCRIPTION
    Looks for venv\Scripts\python.exe, then .venv\Scripts\python.exe (and the POSIX layouts) under the repository
    root, then, for an installed package with no repository environment beside it, the python of the active
    environment (VIRTUAL_ENV); throws with the fix when there is none.
    .EXAMPLE
    $Python = Get-TrainingPython
    #>
    [CmdletBinding()]
    param()
    $RepoRoot = Get-RepositoryRoot
    $Candidates = @(
        (Join-Path $RepoRoot 'venv\Scripts\python.exe'),
        (Join-Path $RepoRoot '.venv\Scripts\python.exe'),
        (Join-Path $RepoRoot '.venv/bin/python'),
        (Join-Path $RepoRoot 'venv/bin/python')
    )
    if ($env:VIRTUAL_ENV) {
        $Candidates += @((Join-Path $env:VIRTUAL_ENV 'Scripts\python.exe'), (Join-Path $env:VIRTUAL_ENV 'bin/python'))
    }
    $Found = $Candidates | Where-Object { Test-Path -LiteralPath $_ -PathType Leaf } | Select-Object -First 1
    if (-not $Found) {
        throw "No virtual environment under $RepoRoot (looked for venv\Scripts\python.exe and .venv, and VIRTUAL_ENV); run windows\setup_env.ps1 first"
    }
    return $Found
}

Export-ModuleMember -Function @(
    'Get-RepositoryRoot',
    'Invoke-NativeCommand',
    'Get-TrainingPython'
)
