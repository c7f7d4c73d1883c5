/// The MPI tags of fedbaechi's messages, one table per communicator.
///
/// A tag keeps messages apart only among those of one communicator, so each table holds every tag
/// sent on its communicator, named, and ranges with their bounds: two uses of a communicator cannot
/// then meet on one tag without the table showing it (the tests check each table). Every tag stays
/// within 0...32767, the least upper bound (`MPI_TAG_UB`) that the MPI standard guarantees.
public enum MessageTags {
    /// The least `MPI_TAG_UB` the MPI standard allows a library: tags up to it work everywhere.
    public static let guaranteedUpperBound = 32_767

    /// The world communicator of a job: a model-parallel job's `RankExecutor` runs on it, and a
    /// federated job's sites meet on it.
    public enum World {
        /// The tensors that cross ranks in a step. A tensor's slot (0..<crossings per step) plus
        /// crossings × the step's place in a cycle of as many steps as fit: the tags of one step are
        /// distinct, and so are those of consecutive steps while the range allows.
        public static let tensors = 0..<24_000
        /// The tensors that cross ranks in an evaluation pass (forward only, in inference mode), numbered
        /// the same way in a range of their own.
        public static let evaluationTensors = 24_000..<32_000
        /// The step's loss, from the rank that computes it to rank 0.
        public static let loss = 32_001
        /// A parameter's values, from the rank that owns it to rank 0 (reports, tests).
        public static let parameters = 32_002
        /// An evaluation batch's logits, from the rank that computes them to rank 0, which scores them.
        public static let prediction = 32_003
        /// The ping-pong messages of `fedbaechi calibrate --link` (`LinkCalibration`), in both directions.
        public static let linkCalibration = 32_004
        /// A federated site's word to every other site that its local training of the round is done
        /// (`FederatedSite`'s barrier, which can name the sites not heard from).
        public static let siteTrained = 32_005

        /// The tag of the tensor in `slot` of `crossings` per pass, in pass `step`, within `range`
        /// (`tensors` for training steps, `evaluationTensors` for evaluation passes).
        public static func tensor(slot: Int, crossings: Int, step: UInt64, in range: Range<Int> = tensors) -> Int {
            precondition(slot >= 0 && slot < max(1, crossings) && crossings <= range.count, "slot \(slot) of \(crossings)")
            let stepsInRange = max(1, range.count / max(1, crossings))
            return range.lowerBound + slot + crossings * Int(step % UInt64(stepsInRange))
        }

        /// Every point-to-point tag of the world, by use.
        public static let table: [(use: String, tags: ClosedRange<Int>)] = [
            ("tensors", tensors.lowerBound...(tensors.upperBound - 1)),
            ("evaluation tensors", evaluationTensors.lowerBound...(evaluationTensors.upperBound - 1)),
            ("loss", loss...loss),
            ("parameters", parameters...parameters),
            ("prediction", prediction...prediction),
            ("link calibration", linkCalibration...linkCalibration),
            ("site trained", siteTrained...siteTrained),
        ]

        /// The tags of `MPI_Comm_create_group` on the world, which a federated job calls to make its
        /// class groups and its leaders' groups (`SiteAggregator`). They are matched only among group
        /// creations, never with point-to-point messages (MPI 3.1, section 6.4.2): a table of their own.
        public enum GroupCreation {
            /// The group of class `classIndex` (0..<classes).
            public static func classGroup(_ classIndex: Int) -> Int { classIndex }
            /// The leaders' group of class `classIndex` (classes..<2 × classes).
            public static func leaderGroup(_ classIndex: Int, classes: Int) -> Int { classes + classIndex }

            /// Every creation tag of a job with `classes` classes, by use.
            public static func table(classes: Int) -> [(use: String, tags: ClosedRange<Int>)] {
                guard classes > 0 else { return [] }
                return [("class groups", classGroup(0)...classGroup(classes - 1)),
                        ("leader groups", leaderGroup(0, classes: classes)...leaderGroup(classes - 1, classes: classes))]
            }
        }
    }

    /// A federated class group's communicator (`SiteAggregator`): each member's contribution goes to
    /// the group's leader; the leaders' own communicators carry only collectives, which take no tag.
    public enum ClassGroup {
        /// Contributions (plain or masked shares) of ADMM iteration k: 7100 + k mod 1000, so that a
        /// late message of one iteration never matches a receive of the next.
        public static let contributions = 7_100..<8_100

        public static func contribution(iteration k: Int) -> Int {
            contributions.lowerBound + k % contributions.count
        }

        /// Every tag of a class group, by use.
        public static let table: [(use: String, tags: ClosedRange<Int>)] = [
            ("contributions", contributions.lowerBound...(contributions.upperBound - 1)),
        ]
    }
}
