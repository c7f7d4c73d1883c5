# Sourced by the scripts that start MPI jobs on one machine.
# Open MPI refuses to run as root without these two variables (containers and CI run as root).
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# More ranks than cores on a workstation: let Open MPI oversubscribe (ranks then yield when idle).
export OMPI_MCA_rmaps_base_oversubscribe=1
# Ranks share cores: one BLAS thread each.
export OPENBLAS_NUM_THREADS=1
