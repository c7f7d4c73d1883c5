#!/usr/bin/env bash
# Compiles Sources/CMPI/cmpi.h against MPICH, which fedbaechi does not build on (Open MPI is the
# default) but whose headers take the other branches of cmpi.h: a header that only Open MPI can
# read fails here, not on a site that builds with MPICH. Every cmpi_ getter is called, so each
# one is compiled; the program is linked against MPICH and run (it calls no MPI function).
# Usage: bash scripts/check-mpich.sh   (needs libmpich-dev: scripts/install-deps.sh installs it)
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "check-mpich: FAILED: $*" >&2; exit 1; }

pkg-config --exists mpich || fail "pkg-config knows no mpich (install libmpich-dev)"
header=Sources/CMPI/cmpi.h

# Every getter the header defines must be called below: a new one is not left uncompiled.
defined=$(grep -oE '\bcmpi_[a-z0-9_]+\(' "$header" | tr -d '(' | sort -u)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/check.c" <<'C'
#include "cmpi.h"
#include <stdio.h>
#include <string.h>

int main(void) {
    MPI_Status status;
    memset(&status, 0, sizeof status);
    volatile MPI_Comm comms[] = {cmpi_comm_world(), cmpi_comm_self(), cmpi_comm_null()};
    volatile MPI_Group group = cmpi_group_null();
    volatile MPI_Request request = cmpi_request_null();
    volatile MPI_Datatype types[] = {cmpi_type_byte(), cmpi_type_float(), cmpi_type_double(),
                                     cmpi_type_int32(), cmpi_type_int64(), cmpi_type_uint64()};
    volatile MPI_Op ops[] = {cmpi_op_sum(), cmpi_op_max(), cmpi_op_min()};
    volatile MPI_Errhandler handler = cmpi_errors_return();
    void *volatile in_place = cmpi_in_place();
    MPI_Status *volatile ignored[] = {cmpi_status_ignore(), cmpi_statuses_ignore()};
    int fields = cmpi_status_source(&status) + cmpi_status_tag(&status) + cmpi_status_error(&status);
    fields += cmpi_err_proc_failed() < 0;  /* MPICH has one: MPIX_ERR_PROC_FAILED */
    const char *name = cmpi_implementation_name();
    (void)comms; (void)group; (void)request; (void)types; (void)ops; (void)handler; (void)in_place; (void)ignored;
    printf("%s %d\n", name, fields);
    return strcmp(name, "MPICH") == 0 ? 0 : 1;
}
C
called=$(grep -oE '\bcmpi_[a-z0-9_]+\(' "$work/check.c" | tr -d '(' | sort -u)
uncalled=$(comm -23 <(echo "$defined") <(echo "$called"))
[ -z "$uncalled" ] || fail "the check does not call: $uncalled"

# shellcheck disable=SC2046  # pkg-config's flags are words
cc -std=c11 -Wall -Wextra -Werror -I Sources/CMPI $(pkg-config --cflags mpich) \
  "$work/check.c" -o "$work/check" $(pkg-config --libs mpich) || fail "$header does not compile against MPICH"
# Run without a launcher: it calls no MPI function, only the header's getters.
name=$("$work/check") || fail "cmpi_implementation_name() does not say MPICH: $name"
echo "check-mpich: $header compiles against MPICH $(pkg-config --modversion mpich) ($(echo "$defined" | wc -l) getters; says \"${name% *}\")"
