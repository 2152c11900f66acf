package console

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/chargeguard/chargeguard/alerting"
	"github.com/chargeguard/chargeguard/alerting/notify"
)

// The console speaks Simplified Chinese and English. The language comes
// from the cg_lang cookie (set by the switch in the header), else from
// Accept-Language, else English.
const (
	langEN     = "en"
	langZH     = "zh-CN"
	langCookie = "cg_lang"
)

// lang translates the console's fixed texts, and renders alert summaries
// and on-site steps in its language (Summary, OnSite).
type lang struct {
	Code string
	m    map[string]string
}

// Name is an alert name (an alerting.AlertName or its id) as the reader
// sees it: the id in English; in Chinese, the Chinese name with the id
// beside it, which the runbooks and the pager's labels use.
func (l *lang) Name(alertname any) string {
	id := fmt.Sprint(alertname)
	if l.Code == langZH {
		if zh := notify.NameZH(id); zh != "" {
			return zh + "（" + id + "）"
		}
	}
	return id
}

// T returns the text in the language, or the English key.
func (l *lang) T(s string) string {
	if t, ok := l.m[s]; ok {
		return t
	}
	return s
}

// Summary is an alert's summary in the language. English is the engine's
// own summary (it names the limit too). Chinese is built from the alert's
// fields (name, place, reading) with alerting/notify's catalogue, the same
// text as the summary_zh annotation the WeCom message quotes: one
// catalogue for the pager and the console, and no translation of the
// English text at run time.
func (l *lang) Summary(a alerting.Alert) string {
	name := a.Name.String()
	if l.Code == langZH {
		return notify.SummaryZH(name, a.Site, a.Pile, a.Port, notify.Reading(name, a.Value))
	}
	if a.Summary != "" {
		return a.Summary
	}
	return notify.Annotations(name, a.Site, a.Pile, a.Port, notify.Reading(name, a.Value), "")["summary"]
}

// OnSite is what to do on site about an alert, in the language: the
// engine's steps in English, the catalogue's in Chinese.
func (l *lang) OnSite(a alerting.Alert) string {
	name := a.Name.String()
	if l.Code == langZH {
		return notify.OnSiteZH(name)
	}
	if a.OnSite != "" {
		return a.OnSite
	}
	return notify.Annotations(name, a.Site, a.Pile, a.Port, "", "")["on_site"]
}

var (
	english = &lang{Code: langEN}
	chinese = &lang{Code: langZH, m: zhCN}
)

func langOf(r *http.Request) *lang {
	if c, err := r.Cookie(langCookie); err == nil {
		switch c.Value {
		case langZH:
			return chinese
		case langEN:
			return english
		}
	}
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag := strings.ToLower(strings.TrimSpace(strings.Split(part, ";")[0]))
		switch {
		case strings.HasPrefix(tag, "zh"):
			return chinese
		case strings.HasPrefix(tag, "en"):
			return english
		}
	}
	return english
}

var zhCN = map[string]string{
	"Fleet":                                  "总览",
	"Alerts":                                 "告警",
	"Sign in":                                "登录",
	"Sign out":                               "退出",
	"Name":                                   "姓名",
	"Token":                                  "令牌",
	"Site":                                   "站点",
	"Sites":                                  "站点",
	"Pile":                                   "充电桩",
	"Piles":                                  "充电桩",
	"Port":                                   "端口",
	"Ports":                                  "端口",
	"Charging":                               "充电中",
	"Warning":                                "预警",
	"Latched":                                "已锁断",
	"Closed":                                 "已断开",
	"Offline":                                "离线",
	"Critical":                               "严重",
	"Unacknowledged":                         "未确认",
	"Active alerts":                          "当前告警",
	"Recent alerts":                          "最近告警",
	"No active alert.":                       "没有当前告警。",
	"No alert.":                              "没有告警。",
	"Acknowledge":                            "确认",
	"Acknowledged by":                        "确认人",
	"On site":                                "已到场",
	"Note":                                   "备注",
	"Add note":                               "添加备注",
	"Reset port":                             "复位端口",
	"Reset whole pile":                       "复位整桩",
	"Temperature":                            "温度",
	"Current":                                "电流",
	"State":                                  "状态",
	"Latch reason":                           "锁断原因",
	"Latched at":                             "锁断时间",
	"Command audit":                          "指令审计",
	"Last hour":                              "最近一小时",
	"Timeline":                               "处置时间线",
	"Fired":                                  "触发",
	"Cleared":                                "已解除",
	"Actor":                                  "执行者",
	"Detail":                                 "详情",
	"What to do on site":                     "现场处置",
	"Live":                                   "实时",
	"Stale: the last read failed":            "数据过期：最近一次读取失败",
	"Wrong name or token.":                   "姓名或令牌错误。",
	"Too many failed sign-ins; try again in": "登录失败次数过多，请稍后再试：",
	"You are a viewer: changes need an operator token.": "您是只读用户：操作需要运维令牌。",
	"Reset refused":                     "复位被拒绝",
	"Reset accepted: open command sent": "复位已接受：已发送开启指令",
	"Acknowledged":                      "已确认",
	"Marked on site":                    "已标记到场",
	"Note added":                        "备注已添加",
	"Not found":                         "未找到",
	"Forbidden":                         "禁止访问",
	"No port reported yet.":             "尚无端口上报。",
	"No reading yet.":                   "尚无读数。",
	"No audit record.":                  "没有审计记录。",
	"signed in as":                      "当前用户",
	"viewer":                            "只读",
	"operator":                          "运维",
	"Time":                              "时间",
	"Alert":                             "告警",
	"Severity":                          "级别",
	"details":                           "详情",
	"target":                            "目标",
	"whole pile":                        "整桩",
	"Action":                            "操作",
	"idle":                              "空闲",
	"charging":                          "充电中",
	"latched":                           "已锁断",
	"closed":                            "已断开",
	"closing":                           "断开中",
	"offline":                           "离线",
	"warning":                           "预警",
	"unknown":                           "未知",
	"open":                              "开启",
	"Session expired or invalid form; please try again.":                         "会话已过期或表单无效，请重试。",
	"InfluxDB did not answer: the chart shows the readings since the restart at": "InfluxDB 无响应：图表仅显示重启后的读数，重启时间",
}
