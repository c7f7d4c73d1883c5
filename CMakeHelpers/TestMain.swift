// Entry point of the CMake-built test executable: the same one SwiftPM generates for a test product.
import Testing

@main struct TestMain {
    static func main() async {
        await Testing.__swiftPMEntryPoint() as Never
    }
}
