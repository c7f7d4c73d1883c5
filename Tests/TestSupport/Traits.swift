import Testing

extension Trait where Self == ConditionTrait {
    /// A rank suite: its tests are collectives over the ranks mpirun started, so they run only under a
    /// launcher. Run alone (`swift test`) it is reported as skipped, with this reason, not as passed.
    public static var onlyUnderMPILauncher: Self {
        .enabled(if: underMPILauncher,
                 "a rank suite: it runs only under mpirun (scripts/test.sh starts it with 2 to 15 ranks)")
    }
}
