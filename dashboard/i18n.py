"""Languages of the dashboard: Simplified Chinese and English, every label from one catalog.

The language comes from the ``lang`` query parameter (the switch), then the ``lingtan_lang``
cookie it sets, then the browser's ``Accept-Language``; Chinese when nothing says otherwise,
because the people on the factory floor read Chinese first. Numbers and dates are formatted
per language in ``dashboard.formatting``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")
DEFAULT: Lang = "zh"
COOKIE = "lingtan_lang"
LOCALES: dict[Lang, str] = {"zh": "zh_Hans_CN", "en": "en_GB"}

# key → (English, Chinese). Keys are stable identifiers; tests check both columns are filled.
CATALOG: dict[str, tuple[str, str]] = {
    # frame
    "product": ("Lingtan", "零碳"),
    "nav.overview": ("Overview", "总览"),
    "nav.air": ("Compressed air", "压缩空气"),
    "nav.heat": ("Boilers & heat", "锅炉与热能"),
    "nav.meters": ("Meters & gateways", "仪表与网关"),
    "nav.reports": ("Reports", "报表"),
    "nav.alerts": ("Alerts", "告警"),
    "lang.switch": ("中文", "English"),
    "lang.switch.title": ("切换到中文", "Switch to English"),
    "as_of": ("as of", "数据时间"),
    "status.connecting": ("connecting", "连接中"),
    "status.live": ("live", "实时"),
    "status.stale": ("stale", "数据陈旧"),
    "sign_out": ("Sign out", "退出"),
    # overview sections
    "section.now": ("Now", "当前"),
    "section.today": ("Today", "今日"),
    "section.chart": ("Power, last 24 hours", "功率（最近 24 小时）"),
    "today.since": ("since 00:00 {tz}", "自 00:00 起（{tz}）"),
    "today.coverage": ("data coverage {pct} %", "数据覆盖率 {pct}%"),
    # tiles
    "tile.grid_kw": ("Grid power", "电网功率"),
    "tile.pv_kw": ("PV power", "光伏功率"),
    "tile.load_kw": ("Site load", "厂区负荷"),
    "tile.today_kwh": ("Consumption", "用电量"),
    "tile.today_tco2": ("Carbon (Scope 1 + 2)", "碳排放（范围一 + 二）"),
    "tile.today_tce": ("Energy (standard coal)", "综合能耗（标准煤）"),
    "tile.intensity_24h": ("Carbon intensity, 24 h", "碳排放强度（24 小时）"),
    "note.scope12.location": ("Scope 2 location-based", "范围二基于位置"),
    "note.scope12.market": ("Scope 2 market-based", "范围二基于市场"),
    "note.tce": ("GB/T 2589-2020", "GB/T 2589-2020"),
    "note.intensity_24h": ("Scope 2 electricity ÷ consumption", "范围二电力排放 ÷ 用电量"),
    "tile.green_ratio": ("Green-power ratio", "绿电占比"),
    "tile.intensity": ("Carbon intensity now", "当前碳排放强度"),
    "note.importing": ("importing", "购电"),
    "note.exporting": ("exporting", "上网"),
    "note.generating": ("generating", "发电中"),
    "note.idle": ("idle", "未发电"),
    "note.grid_plus_pv": ("grid + PV", "电网 + 光伏"),
    "note.today_split": ("grid {grid} kWh · PV {pv} kWh", "电网 {grid} kWh · 光伏 {pv} kWh"),
    "note.green_ratio": ("(PV self-consumed + green purchases) ÷ consumption",
                         "（光伏自用 + 绿电交易与绿证）÷ 用电量"),
    "note.intensity": ("grid CO₂ ÷ consumption", "电网二氧化碳 ÷ 用电量"),
    "note.waiting": ("waiting for data", "等待数据"),
    "missing.no_meter": ("no meter", "无仪表"),
    "missing.offline": ("offline", "离线"),
    "missing.no_data": ("no data", "无数据"),
    "as_of.none": ("no recent readings", "暂无最新读数"),
    # power flow and intensity
    "section.flow": ("Power flow now", "当前功率流向"),
    "section.intensity": ("Carbon intensity, hourly, last 24 hours", "碳排放强度（逐时，最近 24 小时）"),
    "flow.grid": ("Grid", "电网"),
    "flow.pv": ("PV", "光伏"),
    "flow.site": ("Site", "厂区"),
    "flow.compressors": ("Compressors", "空压机"),
    "flow.boiler_house": ("Boiler house", "锅炉房"),
    "flow.production": ("Production lines", "生产线"),
    "flow.other": ("Other", "其他"),
    # chart
    "trace.pv_kw": ("PV generation", "光伏发电"),
    "trace.grid_kw": ("Grid (import + / export −)", "电网（购电 + / 上网 −）"),
    "trace.load_kw": ("Site load", "厂区负荷"),
    "chart.kw": ("kW", "kW"),
    # emission factors on tiles
    "factor.grid": ("{region} grid", "{region}电网"),
    "factor.grid_residual": ("{region} grid, residual mix (market-based)",
                             "{region}电网剩余组合（基于市场）"),
    "factor.grid_fossil": ("{region} grid, fossil-fired only", "{region}电网化石能源发电"),
    "region.national": ("China national", "全国"),
    "region.north": ("North China", "华北"),
    "region.north_east": ("North-East China", "东北"),
    "region.east": ("East China", "华东"),
    "region.central": ("Central China", "华中"),
    "region.north_west": ("North-West China", "西北"),
    "region.south": ("South China", "南方"),
    "region.south_west": ("South-West China", "西南"),
    # controls
    "control.site": ("Site", "厂区"),
    "control.range": ("Range", "时间范围"),
    "control.basis": ("Scope 2", "范围二"),
    "control.from": ("from", "开始"),
    "control.to": ("to", "结束"),
    "range.today": ("Today", "今日"),
    "range.7d": ("7 days", "7 天"),
    "range.30d": ("30 days", "30 天"),
    "range.custom": ("Custom", "自定义"),
    "basis.location": ("location-based", "基于位置"),
    "basis.market": ("market-based", "基于市场"),
    "window.caption": ("{start} – {end} · coverage {pct} %", "{start} – {end} · 覆盖率 {pct}%"),
    # compressed air page
    "air.title": ("Compressed air", "压缩空气"),
    "air.sp_loaded": ("Specific power, fully loaded", "满载比功率"),
    "air.sp_overall": ("Specific power, all running time", "总体比功率"),
    "air.grade": ("GB 19153-2019 grade", "GB 19153-2019 能效等级"),
    "air.grade.value": ("grade {grade}", "{grade} 级"),
    "air.grade.none": ("not graded", "未评级"),
    "air.grade.worse": ("worse than grade 3", "劣于 3 级"),
    "air.load_ratio": ("Load ratio", "加载率"),
    "air.energy": ("Electricity", "用电量"),
    "air.air": ("Free air delivered", "排气量"),
    "air.timeline": ("Load / unload / off, last 24 hours", "加载 / 卸载 / 停机（最近 24 小时）"),
    "air.state.off": ("off", "停机"),
    "air.state.unloaded": ("unloaded", "卸载"),
    "air.state.loaded": ("loaded", "加载"),
    "air.band": ("grade limits", "等级限值"),
    "air.none": ("No compressor on this site.", "本厂区没有空压机。"),
    "heat.recovered": ("Heat recovered", "回收热量"),
    "heat.avoided_gas": ("Gas avoided", "节约天然气"),
    "heat.avoided_co2": ("CO₂ avoided", "减少二氧化碳"),
    "heat.avoided_tce": ("Standard coal avoided", "节约标准煤"),
    "heat.saved": ("Money saved", "节约费用"),
    "basis.measured": ("measured by the heat meter", "热量表实测"),
    "basis.estimated": ("estimated from compressor energy", "按空压机用电量估算"),
    "basis.none": ("no heat recovery", "无余热回收"),
    # boiler and heat page
    "heat.title": ("Boilers & heat", "锅炉与热能"),
    "heat.efficiency": ("Boiler efficiency (direct method)", "锅炉热效率（正平衡）"),
    "heat.gb24500": ("GB 24500 grade", "GB 24500 能效等级"),
    "heat.steam": ("Steam", "蒸汽"),
    "heat.gas": ("Natural gas", "天然气"),
    "heat.share": ("Recovered heat share", "余热回收占比"),
    "heat.share.note": ("recovered ÷ (recovered + boiler heat output)",
                        "回收热量 ÷（回收热量 + 锅炉供热量）"),
    "heat.none": ("No boiler on this site.", "本厂区没有锅炉。"),
    # meters and gateways page
    "meters.title": ("Meters", "仪表"),
    "meters.id": ("Meter", "仪表"),
    "meters.name": ("Name", "名称"),
    "meters.role": ("Role", "角色"),
    "meters.last": ("Last reading", "最新读数"),
    "meters.seen": ("Last seen", "最后上报"),
    "meters.quality": ("Quality", "质量"),
    "meters.state": ("State", "状态"),
    "meters.ok": ("ok", "正常"),
    "meters.stale": ("stale", "陈旧"),
    "meters.offline": ("offline", "离线"),
    "meters.never": ("never", "从未"),
    "quality.good": ("good", "良好"),
    "quality.flagged": ("flagged {flags}", "标记 {flags}"),
    "gateways.title": ("Gateways", "网关"),
    "gateways.id": ("Gateway", "网关"),
    "gateways.heartbeat": ("Last heartbeat", "最后心跳"),
    "gateways.buffer": ("Buffered", "缓存"),
    "gateways.dead": ("Dead letters", "死信"),
    "gateways.devices": ("Devices", "设备"),
    "gateways.online": ("online", "在线"),
    "gateways.offline": ("offline", "离线"),
    "gateways.none": ("No gateway has reported yet.", "尚无网关上报。"),
    "dead.total": ("Dead-lettered payloads: {n}", "死信报文：{n}"),
    "role.none": ("—", "—"),
    "edit.role": ("Change role", "修改角色"),
    "edit.saved": ("Meter {meter} is now {role}.", "仪表 {meter} 的角色已改为 {role}。"),
    "edit.refused": ("Your role cannot change meters.", "您的角色无权修改仪表。"),
    # reports page
    "reports.title": ("Reports", "报表"),
    "reports.kind": ("Report", "报表"),
    "reports.ghg": ("GHG inventory", "温室气体排放清单"),
    "reports.balance": ("Energy balance", "能源平衡表"),
    "reports.period": ("Period", "周期"),
    "reports.month": ("Month", "月度"),
    "reports.year": ("Year", "年度"),
    "reports.date": ("A day in the period", "周期内任一日"),
    "reports.csv": ("Download CSV", "下载 CSV"),
    "reports.xlsx": ("Download XLSX", "下载 XLSX"),
    "reports.none": ("No data for this period.", "该周期无数据。"),
    # alerts
    "alerts.title": ("Alerts", "告警"),
    "alerts.active": ("Active", "活动告警"),
    "alerts.recent": ("Recent", "近期告警"),
    "alerts.empty": ("No alerts.", "暂无告警。"),
    "alerts.rule": ("Rule", "规则"),
    "alerts.subject": ("Subject", "对象"),
    "alerts.state": ("State", "状态"),
    "alerts.since": ("Since", "开始时间"),
    "alerts.value": ("Value", "数值"),
    "alerts.threshold": ("Threshold", "阈值"),
    "alerts.time": ("Time", "时间"),
    "alerts.event": ("Event", "事件"),
    "alerts.ack_col": ("Acknowledged", "确认"),
    "alerts.ack": ("Acknowledge", "确认"),
    "alerts.acked": ("by {by}", "由 {by} 确认"),
    "alerts.acked_now": ("Acknowledged: {rule} · {subject}", "已确认：{rule} · {subject}"),
    "alerts.state.pending": ("pending", "待定"),
    "alerts.state.firing": ("firing", "告警中"),
    "alerts.kind.firing": ("fired", "触发"),
    "alerts.kind.resolved": ("resolved", "恢复"),
    "alerts.kind.acknowledged": ("acknowledged", "已确认"),
    "alerts.kind.pending": ("pending", "待定"),
    "alerts.kind.renotify": ("notified again", "再次通知"),
    "alerts.kind.cancelled": ("cleared before firing", "触发前已恢复"),
    # errors
    "error.not_configured": ("LINGTAN_DATABASE_URL is not set: the dashboard has no database to read.",
                             "未设置 LINGTAN_DATABASE_URL：仪表盘没有可读取的数据库。"),
    "error.site_not_found": ("Site not found: {site}", "未找到厂区：{site}"),
    "error.db_unreachable": ("Database unreachable (last try {time}) — showing the last values received.",
                             "数据库无法连接（最后尝试 {time}）——显示最后收到的数值。"),
    "error.refresh_failed": ("Refresh failed — showing the last values received. See the server log.",
                             "刷新失败——显示最后收到的数值。详见服务器日志。"),
}


def t(key: str, lang: Lang, **values: object) -> str:
    en, zh = CATALOG[key]
    text = zh if lang == "zh" else en
    return text.format(**values) if values else text


def pick(tag: str | None) -> Lang | None:
    """A language tag ("zh-CN", "en_US", "zh-Hant") → one of ours, or None."""
    if not tag:
        return None
    primary = tag.strip().replace("_", "-").split("-")[0].lower()
    return primary if primary in LANGS else None  # type: ignore[return-value]


def negotiate(accept_language: str | None) -> Lang:
    """The first of the browser's languages, by quality, that the dashboard speaks."""
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            name, _, value = p.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if tag and q > 0:
            ranked.append((-q, i, tag))
    for _, _, tag in sorted(ranked):
        lang = pick(tag)
        if lang:
            return lang
    return DEFAULT


def request_lang(args: Mapping[str, str], cookies: Mapping[str, str], accept_language: str | None,
                 user_language: str | None = None) -> Lang:
    """The switch (``?lang=``), then the remembered choice (cookie), then the signed-in user's
    own setting, then the browser."""
    return (pick(args.get("lang")) or pick(cookies.get(COOKIE)) or pick(user_language)
            or negotiate(accept_language))


# The report tables (api/services/report_formats.py) are written in English, as the downloaded
# files are; on a Chinese page their fixed words are shown in Chinese. Values, notes and factor
# sources stay as published.
REPORT_TERMS: dict[str, str] = {
    # tables
    "Summary": "摘要", "By carrier": "按能源品种", "Factors": "排放因子与折算系数", "Monthly": "月度",
    "Notes": "说明", "Balance": "能源平衡", "Indicators": "指标",
    # summary rows
    "Report": "报表", "Site": "厂区", "Site name": "厂区名称", "Grid region": "电网区域",
    "Factor set": "因子集", "Period": "周期", "Start (local)": "开始（当地时间）",
    "End (local, exclusive)": "结束（当地时间，不含）",
    "GHG inventory (Scope 1 and 2)": "温室气体排放清单（范围一和范围二）", "Energy balance": "能源平衡表",
    "Green-factory indicators (GB/T 36132-2025)": "绿色工厂指标（GB/T 36132-2025）",
    "Scope 1": "范围一", "Scope 2, location-based": "范围二（基于位置）",
    "Scope 2, market-based": "范围二（基于市场）", "Total, location-based": "合计（基于位置）",
    "Total, market-based": "合计（基于市场）", "Green certificates applied": "已使用绿证",
    "Green-power trades applied": "已使用绿电交易",
    "Comprehensive energy consumption": "综合能源消费量",
    "Comprehensive energy consumption, electricity at equal value": "综合能源消费量（电力按等价值）",
    # columns
    "item": "项目", "value": "数值", "unit": "单位", "coverage": "数据覆盖率", "factor": "因子",
    "kind": "类型", "subject": "对象", "data year": "数据年份", "region": "区域", "source": "来源",
    "valid from": "生效自", "valid to": "生效至", "note": "说明", "scope": "范围", "carrier": "能源品种",
    "amount": "数量", "tCO2e location-based": "tCO2e（基于位置）", "tCO2e market-based": "tCO2e（基于市场）",
    "tce": "tce", "month": "月份", "consumption kWh": "用电量 kWh", "Scope 1 tCO2e": "范围一 tCO2e",
    "Scope 2 location-based tCO2e": "范围二（基于位置）tCO2e",
    "Scope 2 market-based tCO2e": "范围二（基于市场）tCO2e", "section": "类别",
    "share of total": "占总量比例", "basis": "依据", "indicator": "指标", "name (zh)": "中文名称",
    "formula": "公式", "key": "键",
    # balance sections and items, carriers
    "input": "输入", "output": "输出", "consumption": "消费", "of which": "其中", "internal": "内部",
    "grid import": "电网购电", "PV generation": "光伏发电", "grid export": "上网电量",
    "electricity consumed": "用电量", "recovered waste heat": "回收余热", "natural gas": "天然气",
    "purchased heat": "外购热力", "purchased steam": "外购蒸汽", "electricity": "电力",
    "natural_gas": "天然气", "heat": "热力", "steam": "蒸汽", "measured": "实测", "estimated": "估算",
    "none": "无",
    # closed periods
    "Status": "状态", "Restatement": "重述（按当前数据重算）", "figure": "数据项", "closed": "关账值",
    "now": "当前重算值", "difference": "差值", "closed coverage": "关账时覆盖率",
    "now coverage": "当前覆盖率", "reason": "原因",
}


def report_term(text: str, lang: Lang) -> str:
    return REPORT_TERMS.get(text, text) if lang == "zh" else text
