package notify

import (
	"math"
	"sort"
	"strconv"
	"strings"
)

// Severities, the values of the "severity" label. deploy/alertmanager routes
// on them: critical pages on-call at once, warning goes to the operators.
const (
	SeverityCritical = "critical"
	SeverityWarning  = "warning"
)

// DefaultRunbookBase is where the runbooks live unless Options.RunbookBaseURL
// says otherwise: runbook_url is <base>/docs/runbooks/<alertname>.md.
const DefaultRunbookBase = "https://github.com/chargeguard/chargeguard/blob/main"

// alertText is what on-call reads about one alert name. %s verbs are not
// used: the texts are assembled by Annotations so that a site or pile id can
// never be mistaken for a format directive.
type alertText struct {
	severity string
	// pile is true for alerts about the whole pile (port 0).
	pile bool
	// summary is one line, without the place: Annotations prefixes it.
	summary string
	// what tells what happened and what chargeguard already did.
	what string
	// onSite is what the person on call does, in order.
	onSite string
	// zhSummary and zhOnSite are summary and onSite in Simplified Chinese,
	// for the console and the Chinese (WeCom) template: the people paged
	// are in Hangzhou. Every alert name has both (a test holds it).
	zhSummary string
	zhOnSite  string
	// unit is the unit of the alert's reading ("°C", "A", "mA"...), ""
	// for a count or when the alert has no reading.
	unit string
}

// catalogue holds every alert name the safety engine raises (see the policy
// table in docs/protocol.md). Keep the texts short: they are read on a phone
// at 3 a.m.
var catalogue = map[string]alertText{
	"smoke": {
		severity: SeverityCritical, pile: true,
		summary:   "SMOKE detected: possible fire",
		what:      "The pile's smoke detector tripped. chargeguard has cut every port of the pile.",
		onSite:    "1. Call 119 now. 2. Evacuate the shed and keep people out. 3. Go on site with an extinguisher (dry powder or CO2, never water on live equipment). 4. Switch off the pile's breaker when it is safe to reach. Do not reset any port until the fire service has cleared the site.",
		zhSummary: "烟雾报警：可能起火，整桩已断电",
		zhOnSite:  "1. 立即拨打 119。2. 疏散车棚人员并阻止进入。3. 携带灭火器（干粉或二氧化碳，带电设备严禁用水）赶赴现场。4. 安全时断开充电桩总闸。消防确认前不得复位任何端口。",
	},
	"overheat": {
		severity:  SeverityCritical,
		summary:   "port overheated, port cut",
		what:      "The socket temperature reached the cut-off limit. chargeguard has cut the port; it stays cut until an operator resets it.",
		onSite:    "1. If there is smoke or a burning smell, call 119. 2. Unplug the battery and move it away from the shed if it is hot or swollen. 3. Check the plug and socket for burn marks or melted plastic before any reset; a marked socket must be replaced, not reset.",
		unit:      "°C",
		zhSummary: "端口过热，已断电",
		zhOnSite:  "1. 如有烟雾或焦味，拨打 119。2. 电池发烫或鼓包时拔下并移出车棚。3. 复位前检查插头和插座有无烧痕或熔化；有烧痕的插座须更换，不得复位。",
	},
	"overheat_rate": {
		severity:  SeverityCritical,
		summary:   "port temperature rising fast, port cut",
		what:      "The socket temperature rose faster than the allowed rate while charging. chargeguard has cut the port.",
		onSite:    "1. Check the battery: if it keeps heating, swells, hisses or smokes after the cut, call 119 and move people away (thermal runaway). 2. Unplug it only if safe. 3. Check plug and socket for burn marks before any reset.",
		unit:      "°C/min",
		zhSummary: "端口温度快速上升，已断电",
		zhOnSite:  "1. 检查电池：断电后仍持续升温、鼓包、嘶响或冒烟，拨打 119 并疏散人员（热失控）。2. 确认安全后再拔下。3. 复位前检查插头和插座有无烧痕。",
	},
	"overcurrent": {
		severity:  SeverityCritical,
		summary:   "port drew overcurrent, port cut",
		what:      "The port drew more than its rated current for several samples. chargeguard has cut the port.",
		onSite:    "1. Check the charger: modified, damaged or non-compliant chargers are the usual cause. 2. Tell the owner not to use it again. 3. Reset only with a compliant charger.",
		unit:      "A",
		zhSummary: "端口过流，已断电",
		zhOnSite:  "1. 检查充电器：改装、损坏或不合规的充电器是常见原因。2. 告知车主停止使用该充电器。3. 仅在使用合规充电器时复位。",
	},
	"short_circuit": {
		severity:  SeverityCritical,
		summary:   "short circuit on port, port cut",
		what:      "The port drew at least twice its rated current. chargeguard cut it at once.",
		onSite:    "1. Look for smoke or scorch marks; call 119 if there is any. 2. Check the cable, plug and socket for damage or water. 3. Keep the port out of service until an electrician has checked it.",
		unit:      "A",
		zhSummary: "端口短路，已立即断电",
		zhOnSite:  "1. 查看有无烟雾或烧焦痕迹，如有拨打 119。2. 检查线缆、插头和插座有无损坏或进水。3. 电工检查前该端口停止使用。",
	},
	"leakage": {
		severity: SeverityCritical, pile: true,
		summary:   "leakage current on the pile, all ports cut",
		what:      "The pile's residual current is above the limit: risk of electric shock. chargeguard has cut every port of the pile.",
		onSite:    "1. Do not touch the pile housing, especially when wet. 2. Switch off the pile's breaker. 3. Look for water ingress or damaged cables. 4. Call an electrician; reset only after the fault is found.",
		unit:      "mA",
		zhSummary: "充电桩漏电，全部端口已断电",
		zhOnSite:  "1. 不要触碰桩体，尤其在潮湿时。2. 断开充电桩总闸。3. 检查是否进水或线缆破损。4. 请电工排查，找到故障后再复位。",
	},
	"sensor_fault": {
		severity:  SeverityCritical,
		summary:   "temperature sensor fault, port cut",
		what:      "The port's temperature reading is missing or impossible while charging, so the port cannot be watched. chargeguard has cut it (fail-safe).",
		onSite:    "1. Check the port for heat or burn marks. 2. Have the sensor and its wiring repaired. 3. Do not reset before the sensor reads plausibly again.",
		zhSummary: "温度传感器故障，已断电",
		zhOnSite:  "1. 检查端口有无发热或烧痕。2. 维修传感器及其接线。3. 传感器读数恢复正常前不得复位。",
	},
	"close_failed": {
		severity:  SeverityCritical,
		summary:   "pile does not answer the cut command: power may still flow",
		what:      "chargeguard ordered a cut and the pile never acknowledged it, even after retries. It then ordered the whole pile off, which may not have arrived either.",
		onSite:    "1. Go on site now and switch off the pile's breaker by hand. 2. Check whether the port still charges. 3. Check the pile's network link and power before switching it back on.",
		zhSummary: "充电桩未响应断电指令：可能仍在供电",
		zhOnSite:  "1. 立即赶赴现场，手动断开充电桩总闸。2. 确认该端口是否仍在充电。3. 重新合闸前检查充电桩的网络和电源。",
	},
	"relay_welded": {
		severity:  SeverityCritical,
		summary:   "relay did not open: port still live after the cut",
		what:      "The pile acknowledged the cut but the port still draws current: its relay is probably welded. chargeguard ordered the whole pile off.",
		onSite:    "1. Go on site now and switch off the pile's breaker by hand; no command can stop this port. 2. Unplug the battery. 3. Keep the pile off until it is repaired.",
		zhSummary: "继电器未断开：断电后端口仍带电",
		zhOnSite:  "1. 立即赶赴现场手动断开充电桩总闸；远程指令无法停止该端口。2. 拔下电池。3. 维修完成前保持断电。",
	},
	"pile_offline": {
		severity: SeverityCritical, pile: true,
		summary:   "pile offline while charging: no cut can reach it",
		what:      "The pile went offline (death message or silence) while at least one port was charging. chargeguard can neither watch it nor cut it.",
		onSite:    "1. Try to restore the pile's network link or power. 2. If it is not back within a few minutes, go on site and switch off the pile's breaker. 3. Check the charging batteries for heat.",
		unit:      "s",
		zhSummary: "充电中的充电桩离线：无法远程断电",
		zhOnSite:  "1. 尝试恢复充电桩的网络或电源。2. 几分钟内未恢复，赶赴现场断开充电桩总闸。3. 检查正在充电的电池是否发热。",
	},
	"temp_warning": {
		severity:  SeverityWarning,
		summary:   "port temperature high",
		what:      "The socket is above the warning temperature. The port still charges; chargeguard cuts it automatically at the cut-off limit.",
		onSite:    "Check the plug and socket at the next round; look for discoloured or loose plugs.",
		unit:      "°C",
		zhSummary: "端口温度偏高",
		zhOnSite:  "下次巡检时检查插头和插座，留意变色或松动的插头。",
	},
	"hot_contact": {
		severity:  SeverityWarning,
		summary:   "port much hotter than ambient: loose or burnt plug?",
		what:      "The socket is far hotter than the enclosure while charging, the early sign of a loose or burnt contact.",
		onSite:    "At the next visit check the plug and socket; replace a discoloured or loose socket before it overheats.",
		unit:      "°C",
		zhSummary: "端口温度远高于环境：插头松动或烧蚀？",
		zhOnSite:  "下次到场时检查插头和插座；变色或松动的插座应在过热前更换。",
	},
	"max_duration": {
		severity:  SeverityWarning,
		summary:   "charging session too long, port closed",
		what:      "The port charged for longer than the session limit. chargeguard has closed it.",
		onSite:    "Tell the owner: a battery that never fills points to a faulty charger or a worn battery.",
		zhSummary: "单次充电时间过长，端口已关闭",
		zhOnSite:  "告知车主：电池总充不满，说明充电器故障或电池老化。",
	},
	// The pile_* warnings close nothing: chargeguard sees less of the pile
	// than it should, and the pile wants a look before that hides a fault.
	"pile_stream": {
		severity: SeverityWarning, pile: true,
		summary:   "pile repeats or reorders its messages: timed rules degraded",
		what:      "Ten messages in a row from the pile were repeated, old or out of order (redelivery storm, firmware bug, restarted counter). Instant cuts (overheat, short circuit, leakage, smoke, sensor fault) still work; rate of rise, overcurrent, full battery and the 8 h cap wait for messages in order. Nothing was closed.",
		onSite:    "1. Open the Site board: does the pile still send new readings? 2. Check its network link; restart the pile if it keeps repeating. 3. If it comes back, report it to the vendor (clock, counter or firmware).",
		zhSummary: "充电桩重复或乱序发送消息：时间类规则降级",
		zhOnSite:  "1. 打开站点看板：充电桩是否仍有新读数？2. 检查网络；持续重复则重启充电桩。3. 恢复后向厂家报告（时钟、计数器或固件问题）。",
	},
	"pile_protocol": {
		severity: SeverityWarning, pile: true,
		summary:   "pile sends messages that break the protocol",
		what:      "The pile's telemetry was rejected 3 times in a row, or it speaks a protocol version chargeguard does not (firmware update?). chargeguard still acts on every reading that parses; the broken messages are not stored as readings. Nothing was closed.",
		onSite:    "1. Fleet board, Latest rejected messages: what is wrong. 2. Firmware just updated? Have the vendor fix or roll it back. 3. Until then, check this pile's charging ports at the next round.",
		zhSummary: "充电桩发送的消息不符合协议",
		zhOnSite:  "1. 总览看板「最近被拒消息」查看错误原因。2. 刚升级固件？请厂家修复或回退。3. 修复前，下次巡检时检查该桩正在充电的端口。",
	},
	"pile_config": {
		severity: SeverityWarning, pile: true,
		summary:   "pile announces an impossible rated current",
		what:      "The pile's birth message announced a rated current above the configured cap (max_rated_a; mA sent as A?). chargeguard uses the cap for the overcurrent and short-circuit rules. Nothing was closed.",
		onSite:    "1. Compare with the rated current on the pile's label. 2. Have the vendor correct the pile's setting; the alert resolves at its next birth within the cap. 3. Raise max_rated_a only if the label really says more.",
		unit:      "A",
		zhSummary: "充电桩上报的额定电流不合理",
		zhOnSite:  "1. 与充电桩铭牌上的额定电流核对。2. 请厂家更正设置；下次上线时在上限内即自动解除。3. 仅当铭牌确实更高时才调高 max_rated_a。",
	},
}

// Alertnames returns every alert name chargeguard raises, sorted.
func Alertnames() []string {
	names := make([]string, 0, len(catalogue))
	for n := range catalogue {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Severity returns the severity label value of an alert name (critical or
// warning), or "" for a name chargeguard does not raise.
func Severity(alertname string) string {
	return catalogue[alertname].severity
}

// Annotations returns the annotations of one alert: summary, description,
// on_site (what on-call does), their Chinese summary_zh and on_site_zh, and
// board_url when boardURL is not empty.
// value is the reading that tripped the alert as the reader should see it
// (for example "72.5 °C" or "31 mA"); it may be empty. port 0 means the whole
// pile. An alert name not in the catalogue gets generic texts.
//
// The runbook_url annotation is added by the Notifier, which knows the
// runbook base URL (see RunbookURL).
func Annotations(alertname string, site, pile string, port int, value string, boardURL string) map[string]string {
	t, ok := catalogue[alertname]
	if !ok {
		t = alertText{
			summary: "chargeguard alert " + alertname,
			what:    "chargeguard raised an alert it has no description for.",
			onSite:  "Open the port's board, check the port on site, and follow the runbook.",
		}
	}
	place := "site " + site + ", pile " + pile
	if port > 0 {
		place += ", port " + strconv.Itoa(port)
	} else if !t.pile {
		place += " (whole pile)"
	}
	var desc strings.Builder
	desc.WriteString(t.what)
	if value != "" {
		desc.WriteString(" Reading: ")
		desc.WriteString(value)
		desc.WriteString(".")
	}
	desc.WriteString(" Where: ")
	desc.WriteString(place)
	desc.WriteString(".")

	a := map[string]string{
		"summary":     strings.ToUpper(alertname) + " at " + place + ": " + t.summary,
		"description": desc.String(),
		"on_site":     t.onSite,
		"summary_zh":  SummaryZH(alertname, site, pile, port, value),
		"on_site_zh":  OnSiteZH(alertname),
	}
	if boardURL != "" {
		a["board_url"] = boardURL
	}
	return a
}

// SummaryZH is the Chinese summary of an alert: where, what, and the
// reading (as Reading formats it; "" for none). An alert name not in the
// catalogue gets a generic text.
func SummaryZH(alertname string, site, pile string, port int, reading string) string {
	t, ok := catalogue[alertname]
	if !ok {
		t.zhSummary = "chargeguard 告警 " + alertname
	}
	var b strings.Builder
	b.WriteString("站点 ")
	b.WriteString(site)
	b.WriteString("，充电桩 ")
	b.WriteString(pile)
	if port > 0 {
		b.WriteString("，端口 ")
		b.WriteString(strconv.Itoa(port))
	} else if !t.pile {
		b.WriteString("（整桩）")
	}
	b.WriteString("：")
	b.WriteString(t.zhSummary)
	if reading != "" {
		b.WriteString("（读数 ")
		b.WriteString(reading)
		b.WriteString("）")
	}
	return b.String()
}

// zhNames are the alert names as a Chinese reader sees them on a chip or in
// a latch reason (the id itself stays beside it, to match runbooks).
var zhNames = map[string]string{
	"smoke":         "烟雾",
	"overheat":      "过热",
	"overheat_rate": "温升过快",
	"overcurrent":   "过流",
	"short_circuit": "短路",
	"leakage":       "漏电",
	"sensor_fault":  "传感器故障",
	"close_failed":  "断电失败",
	"relay_welded":  "继电器粘连",
	"pile_offline":  "充电桩离线",
	"temp_warning":  "温度偏高",
	"hot_contact":   "插头过热",
	"max_duration":  "充电超时",
	"pile_stream":   "报文顺序异常",
	"pile_protocol": "协议错误",
	"pile_config":   "额定电流异常",
}

// NameZH is an alert name in Chinese, or "" for a name not in the
// catalogue.
func NameZH(alertname string) string { return zhNames[alertname] }

// OnSiteZH is what on-call does on site, in Chinese.
func OnSiteZH(alertname string) string {
	if t, ok := catalogue[alertname]; ok {
		return t.zhOnSite
	}
	return "打开端口看板，到现场检查该端口，并按处置手册操作。"
}

// Reading formats an alert's reading with its unit ("72.5 °C"), or ""
// when there is none (0: the engine's "no reading"). The number keeps four
// significant digits.
func Reading(alertname string, v float64) string {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return ""
	}
	s := strconv.FormatFloat(v, 'g', 4, 64)
	if u := catalogue[alertname].unit; u != "" {
		s += " " + u
	}
	return s
}

// RunbookURL returns the runbook of an alert name: <base>/docs/runbooks/<alertname>.md.
// An empty base means DefaultRunbookBase.
func RunbookURL(base, alertname string) string {
	if base == "" {
		base = DefaultRunbookBase
	}
	return strings.TrimRight(base, "/") + "/docs/runbooks/" + alertname + ".md"
}
