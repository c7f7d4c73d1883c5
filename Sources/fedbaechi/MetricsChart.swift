import Foundation

/// The curves of a training history as an SVG: loss on the left, accuracy (or perplexity) on the right,
/// against epochs or rounds. A federated run adds each site's own model as a thin line.
enum MetricsChart {
    struct Series {
        var name: String
        var colour: String
        var points: [(x: Double, y: Double)]
        var thin = false
    }

    static let width = 960.0
    static let height = 420.0
    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

    static func svg(_ history: TrainingHistory, title: String) -> String {
        let x = { (point: TrainingHistory.Point) in Double(point.index) }
        func series(_ name: String, _ colour: String, _ value: (TrainingHistory.Point) -> Double?) -> Series {
            Series(name: name, colour: colour, points: history.points.compactMap { p in value(p).flatMap { $0.isFinite ? (x(p), $0) : nil } })
        }
        var loss: [Series]
        var quality: [Series]
        let name = history.qualityName
        if history.isFederated {
            loss = [series("global test loss", "#000000") { $0.testLoss }]
            quality = [series("global \(name)", "#000000") { history.quality($0) }]
            let sites = Set(history.points.flatMap { $0.sites.map(\.site) }).sorted()
            for (i, site) in sites.enumerated() {
                let colour = palette[i % palette.count]
                var train = series("site \(site) train loss", colour) { p in p.sites.first { $0.site == site }?.trainLoss }
                train.thin = true
                loss.append(train)
                var own = series("site \(site) own \(name)", colour) { p in p.sites.first { $0.site == site }?.accuracy }
                own.thin = true
                if !own.points.isEmpty { quality.append(own) }
            }
        } else {
            loss = [series("train loss", palette[0]) { $0.trainLoss }, series("test loss", palette[1]) { $0.testLoss }]
            quality = [series("test \(name)", palette[2]) { history.quality($0) }]
        }
        var body = ""
        body += panel(title: "loss", xLabel: history.unit, series: loss, frame: (60, 50, width / 2 - 90, height - 140))
        body += panel(title: history.isFederated ? name : "test \(name)", xLabel: history.unit, series: quality,
                      frame: (width / 2 + 40, 50, width / 2 - 90, height - 140))
        let legend = (loss + quality.filter { q in !loss.contains { $0.name == q.name } }).enumerated().map { i, s -> String in
            let column = Double(i % 4) * (width / 4) + 20
            let row = height - 30 + Double(i / 4) * 16
            return "<line x1=\"\(f(column))\" y1=\"\(f(row - 4))\" x2=\"\(f(column + 24))\" y2=\"\(f(row - 4))\" stroke=\"\(s.colour)\" stroke-width=\"\(s.thin ? 1 : 2.5)\"/>"
                + "<text x=\"\(f(column + 30))\" y=\"\(f(row))\">\(escape(s.name))</text>"
        }.joined()
        let rows = Double((loss.count + quality.count + 3) / 4)
        let total = height + max(0, rows - 2) * 16
        return """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(f(width))" height="\(f(total))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(f(width / 2))" y="22" text-anchor="middle" font-size="15">\(escape(title)): \(history.points.count) \(history.unit)s</text>
            \(body)\(legend)
            </svg>

            """
    }

    /// One chart: axes with rounded ticks, and each series as a polyline with dots.
    static func panel(title: String, xLabel: String, series: [Series], frame: (x: Double, y: Double, w: Double, h: Double)) -> String {
        let xs = series.flatMap { $0.points.map(\.x) }
        let ys = series.flatMap { $0.points.map(\.y) }
        guard let xMin = xs.min(), let xMax = xs.max(), let yLow = ys.min(), let yHigh = ys.max() else {
            return "<text x=\"\(f(frame.x + frame.w / 2))\" y=\"\(f(frame.y + frame.h / 2))\" text-anchor=\"middle\">no \(escape(title)) recorded</text>"
        }
        let yTicks = ticks(yLow, yHigh)
        let (y0, y1) = (yTicks.first!, yTicks.last!)
        let (x0, x1) = xMin == xMax ? (xMin - 1, xMax + 1) : (xMin, xMax)
        func px(_ x: Double) -> Double { frame.x + (x - x0) / (x1 - x0) * frame.w }
        func py(_ y: Double) -> Double { frame.y + frame.h - (y - y0) / max(y1 - y0, 1e-12) * frame.h }
        var out = "<text x=\"\(f(frame.x + frame.w / 2))\" y=\"\(f(frame.y - 12))\" text-anchor=\"middle\" font-weight=\"bold\">\(escape(title))</text>"
        out += "<rect x=\"\(f(frame.x))\" y=\"\(f(frame.y))\" width=\"\(f(frame.w))\" height=\"\(f(frame.h))\" fill=\"none\" stroke=\"#999\"/>"
        for tick in yTicks {
            out += "<line x1=\"\(f(frame.x))\" y1=\"\(f(py(tick)))\" x2=\"\(f(frame.x + frame.w))\" y2=\"\(f(py(tick)))\" stroke=\"#eee\"/>"
            out += "<text x=\"\(f(frame.x - 6))\" y=\"\(f(py(tick) + 4))\" text-anchor=\"end\">\(String(format: "%g", tick))</text>"
        }
        let step = max(1, Int(((x1 - x0) / 8).rounded(.up)))
        for tick in stride(from: Int(x0.rounded(.up)), through: Int(x1), by: step) {
            out += "<text x=\"\(f(px(Double(tick))))\" y=\"\(f(frame.y + frame.h + 16))\" text-anchor=\"middle\">\(tick)</text>"
        }
        out += "<text x=\"\(f(frame.x + frame.w / 2))\" y=\"\(f(frame.y + frame.h + 32))\" text-anchor=\"middle\">\(escape(xLabel))</text>"
        for s in series where !s.points.isEmpty {
            let path = s.points.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
            out += "<polyline fill=\"none\" stroke=\"\(s.colour)\" stroke-width=\"\(s.thin ? 1 : 2.5)\" points=\"\(path)\"><title>\(escape(s.name))</title></polyline>"
            if !s.thin {
                for p in s.points { out += "<circle cx=\"\(f(px(p.x)))\" cy=\"\(f(py(p.y)))\" r=\"3\" fill=\"\(s.colour)\"/>" }
            }
        }
        return out
    }

    /// Round tick values covering [low, high]: steps of 1, 2 or 5 times a power of ten, about five of them.
    static func ticks(_ low: Double, _ high: Double) -> [Double] {
        let span = high > low ? high - low : max(abs(high), 1) * 0.1
        let raw = span / 5
        let power = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * power }.first { $0 >= raw } ?? raw
        let start = floor((high > low ? low : low - span / 2) / step) * step
        let end = ceil((high > low ? high : high + span / 2) / step) * step
        return stride(from: start, through: end + step / 2, by: step).map { ($0 / step).rounded() * step }
    }

    static func f(_ value: Double) -> String { String(format: "%.1f", value) }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
