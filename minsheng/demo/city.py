"""The fictional city 民声市: areas with polygons, places, categories, units, users and routing.

:func:`generate_city` returns a :class:`DemoCity` of plain frozen dataclasses that the seeder inserts and that
the text and history generators draw from. Same seed, same city.

Area codes follow the prefix rule of the Chinese statistical division codes, so that a child's code always
starts with its parent's code and "is X inside Y" is a string prefix test:

======== ======== ================ ==============================================================
level    digits   example          rule
======== ======== ================ ==============================================================
city     4        ``3399``         the prefecture prefix of the (fictional) division code 339900
district 6        ``339901``       city + 2 digits, 01-05
street   9        ``339901001``    district + 3 digits: 001-099 街道, 101-199 镇, 201-299 乡
community 12      ``339901001001`` street + 3 digits: 001-199 社区 (居委会), 201-299 村 (村委会)
grid     15       ``…001``         community + 3 digits, named 第N网格
======== ======== ================ ==============================================================

Geometry: the city is a blob of ~1,000 square cells (~800 m) of a regular lattice over lon 120.10-120.40,
lat 30.15-30.40. Each cell is one grid; every coarser area is the union of its children, so the levels tile
the city without overlap and nest exactly. Partitions are graph-Voronoi regions grown by breadth-first search
over edge-adjacent cells, which keeps every area a single connected polygon.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from shapely.geometry import box, mapping
from shapely.geometry.polygon import orient
from shapely.ops import unary_union

from minsheng.demo.texts import fake_mobile, fake_name

__all__ = [
    "CITY_CODE",
    "CITY_NAME",
    "LEVELS",
    "ROLES",
    "AreaSpec",
    "CategorySpec",
    "DemoCity",
    "PlaceSpec",
    "RouteSpec",
    "UnitSpec",
    "UserSpec",
    "generate_city",
]

CITY_NAME = "民声市"
CITY_CODE = "3399"
LEVELS = ("city", "district", "street", "community", "grid")
ROLES = ("operator", "dispatcher", "handler", "supervisor", "followup", "leader", "admin")
PLACE_KINDS = ("小区", "学校", "医院", "市场", "公园", "商场", "路")

# Lattice over the city's bounding box; coordinates are rounded once per lattice line so that neighbouring
# cells share bit-identical vertices and unions come out clean.
LON0, LON1, LAT0, LAT1 = 120.10, 120.40, 30.15, 30.40
NCOLS, NROWS = 36, 35
STREETS_PER_DISTRICT = 8
COMMUNITIES_PER_STREET = 5


@dataclass(frozen=True)
class AreaSpec:
    code: str
    name: str
    level: str  # one of LEVELS
    parent_code: str | None
    aliases: tuple[str, ...]
    polygon: dict[str, Any] | None  # GeoJSON Polygon, [lon, lat] order, exterior ring counter-clockwise


@dataclass(frozen=True)
class PlaceSpec:
    name: str
    area_code: str  # the community the place lies in
    kind: str  # one of PLACE_KINDS
    aliases: tuple[str, ...]
    lat: float
    lon: float
    grid_code: str  # the grid that contains (lat, lon); a child of area_code


@dataclass(frozen=True)
class CategorySpec:
    code: str  # "01" / "0101" / "010101": a child's code starts with its parent's
    name: str
    level: int  # 1, 2 or 3
    parent_code: str | None


@dataclass(frozen=True)
class UnitSpec:
    code: str
    name: str
    kind: str  # department, district_office, street_office, community, grid_team, response_team, external
    parent_code: str | None
    area_code: str
    duty_tier: int  # 1: 24-hour duty in the centre, 2: 12-hour, 3: 8-hour
    phone: str
    leader_name: str


@dataclass(frozen=True)
class UserSpec:
    username: str
    display_name: str
    role: str  # one of ROLES
    unit_code: str | None
    phone: str


@dataclass(frozen=True)
class RouteSpec:
    category_code: str  # level 1 or 2
    area_code: str | None  # None: city-wide
    lead_unit_code: str
    assist_unit_codes: tuple[str, ...] = ()


@dataclass(frozen=True)
class DemoCity:
    name: str
    seed: int
    areas: list[AreaSpec]
    places: list[PlaceSpec]
    categories: list[CategorySpec]
    units: list[UnitSpec]
    users: list[UserSpec]
    routing: list[RouteSpec]
    # Grid code → (min_lon, min_lat, max_lon, max_lat); grids are lattice cells, so this is their exact shape
    # and lets the generators draw points inside an area without shapely.
    grid_bounds: dict[str, tuple[float, float, float, float]] = field(repr=False, default_factory=dict)

    # Look-ups used by the text and history generators and by tests. cached_property writes to the instance
    # __dict__ directly, which a frozen dataclass allows.
    @cached_property
    def area_by_code(self) -> dict[str, AreaSpec]:
        return {a.code: a for a in self.areas}

    @cached_property
    def children(self) -> dict[str, list[AreaSpec]]:
        out: dict[str, list[AreaSpec]] = {}
        for a in self.areas:
            if a.parent_code is not None:
                out.setdefault(a.parent_code, []).append(a)
        return out

    def areas_at(self, level: str) -> list[AreaSpec]:
        return [a for a in self.areas if a.level == level]

    @cached_property
    def grid_codes(self) -> list[str]:
        return [a.code for a in self.areas if a.level == "grid"]

    @cached_property
    def _grids_index(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for g in self.grid_codes:
            for n in (4, 6, 9, 12, 15):
                out.setdefault(g[:n], []).append(g)
        return out

    def grids_under(self, code: str) -> list[str]:
        """Grid codes inside an area (the area itself if it is a grid); codes nest by prefix."""
        return self._grids_index.get(code, [])

    def ancestors(self, code: str) -> list[AreaSpec]:
        """The area and its ancestors, most specific first."""
        out = []
        cur: str | None = code
        while cur is not None:
            a = self.area_by_code[cur]
            out.append(a)
            cur = a.parent_code
        return out

    @cached_property
    def places_by_grid(self) -> dict[str, list[PlaceSpec]]:
        out: dict[str, list[PlaceSpec]] = {}
        for p in self.places:
            out.setdefault(p.grid_code, []).append(p)
        return out

    @cached_property
    def places_by_community(self) -> dict[str, list[PlaceSpec]]:
        out: dict[str, list[PlaceSpec]] = {}
        for p in self.places:
            out.setdefault(p.area_code, []).append(p)
        return out

    @cached_property
    def category_by_code(self) -> dict[str, CategorySpec]:
        return {c.code: c for c in self.categories}

    @cached_property
    def leaf_categories(self) -> list[CategorySpec]:
        return [c for c in self.categories if c.level == 3]

    @cached_property
    def _leaves_index(self) -> dict[str, list[CategorySpec]]:
        out: dict[str, list[CategorySpec]] = {}
        for c in self.leaf_categories:
            for n in (2, 4, 6):
                out.setdefault(c.code[:n], []).append(c)
        return out

    def leaves_under(self, code: str) -> list[CategorySpec]:
        """Level-3 categories under a category of any level (itself if it is level 3)."""
        return self._leaves_index.get(code, [])

    @cached_property
    def unit_by_code(self) -> dict[str, UnitSpec]:
        return {u.code: u for u in self.units}

    @cached_property
    def _route_index(self) -> dict[tuple[str, str | None], RouteSpec]:
        return {(r.category_code, r.area_code): r for r in self.routing}

    def route(self, category_code: str, area_code: str | None) -> RouteSpec | None:
        """The routing rule that applies: most specific category first, then most specific area."""
        cats = [category_code[:n] for n in (6, 4, 2) if len(category_code) >= n]
        areas: list[str | None] = [a.code for a in self.ancestors(area_code)] if area_code else []
        areas.append(None)
        for c in cats:
            for a in areas:
                r = self._route_index.get((c, a))
                if r is not None:
                    return r
        return None

    def street_office_for(self, area_code: str) -> str | None:
        """Code of the street office responsible for an area at street level or below."""
        if len(area_code) < 9:
            return None
        return "st" + area_code[:9]

    def district_office_for(self, area_code: str) -> str | None:
        if len(area_code) < 6:
            return None
        return "dist" + area_code[:6]

    def random_point(self, rng: random.Random, area_code: str) -> tuple[float, float]:
        """A (lat, lon) strictly inside the area: inside one of its grids, away from the grid's edges."""
        grid = rng.choice(self.grids_under(area_code))
        x0, y0, x1, y1 = self.grid_bounds[grid]
        lon = x0 + (x1 - x0) * rng.uniform(0.05, 0.95)
        lat = y0 + (y1 - y0) * rng.uniform(0.05, 0.95)
        return round(lat, 6), round(lon, 6)


# ------------------------------------------------------------------------------------------ the category tree
# Level 1: (name, lead unit, [level 2]); level 2: (name, lead unit, local routing "street"/"district"/None,
# [(level-3 name, transfer target or None)]). Level-3 names are unique: texts.py keys its phrases by them.
_T = tuple[str, str, str | None, list[tuple[str, str | None]]]


def _l3(names: str, transfers: dict[str, str] | None = None) -> list[tuple[str, str | None]]:
    t = transfers or {}
    return [(n, t.get(n)) for n in names.split()]


CATEGORY_TREE: list[tuple[str, str, list[_T]]] = [
    ("城乡建设", "zjj", [
        ("市政设施", "cgj", None, _l3("道路破损 路灯故障 井盖缺失 排水管网堵塞")),
        ("建筑施工", "zjj", None, _l3("施工噪音 夜间施工 工地扬尘 渣土车抛洒")),
        ("违法建设", "cgj", "district", _l3("违章搭建 拆改承重墙 侵占绿地")),
        ("物业管理", "fgj", "street", _l3("物业服务 物业收费 电梯故障 小区停车")),
        ("市容秩序", "cgj", "street", _l3("占道经营 乱贴小广告 广告牌安全 共享单车乱停")),
    ]),
    ("环境保护", "sthjj", [
        ("大气污染", "sthjj", None, _l3("餐饮油烟 露天焚烧 工业废气 异味扰民")),
        ("水污染", "sthjj", None, _l3("河道污染 偷排污水 黑臭水体")),
        ("噪声污染", "sthjj", None, _l3("商铺噪音 广场舞噪音 工厂噪音 娱乐场所噪音")),
        ("环境卫生", "cgj", "street", _l3("垃圾清运 垃圾分类 建筑垃圾乱倒 公厕保洁")),
        ("园林绿化", "cgj", None, _l3("树木修剪 绿化带破坏 树木病虫害")),
    ]),
    ("交通运输", "jtj", [
        ("公共交通", "jtj", None, _l3("公交线路 公交服务 公交站点 地铁服务")),
        ("出租网约车", "jtj", None, _l3("出租车拒载 出租车绕路 网约车服务")),
        ("道路交通管理", "gaj", None, _l3("信号灯故障 违章停车 交通拥堵 交通事故", {"交通事故": "122"})),
        ("停车管理", "cgj", "street", _l3("停车收费 停车位不足 僵尸车")),
    ]),
    ("劳动和社会保障", "rsj", [
        ("劳动关系", "rsj", None, _l3("拖欠工资 劳动合同 违法辞退 加班费")),
        ("社会保险", "rsj", None, _l3("养老保险 失业保险 工伤认定 社保缴费")),
        ("就业创业", "rsj", None, _l3("就业补贴 职业培训 创业扶持")),
        ("医疗保障", "ybj", None, _l3("医保报销 医保卡办理 异地就医备案")),
    ]),
    ("教育文体", "jyj", [
        ("基础教育", "jyj", None, _l3("入学报名 学区划分 校车安全 学校收费")),
        ("校外培训", "jyj", None, _l3("培训退费 无证办学 培训虚假宣传")),
        ("学前教育", "jyj", None, _l3("幼儿园入园 托育服务 幼儿园收费")),
        ("文化体育", "wlj", None, _l3("体育场馆 图书馆服务 健身器材损坏")),
    ]),
    ("卫生健康", "wjw", [
        ("医疗服务", "wjw", None, _l3("医院服务态度 看病排队 医疗纠纷")),
        ("公共卫生", "wjw", None, _l3("疫苗接种 病媒生物 健康证办理")),
        ("医疗急救", "wjw", None, _l3("急救求助 急救车响应", {"急救求助": "120"})),
        ("妇幼健康", "wjw", None, _l3("生育登记 出生医学证明 母婴保健")),
    ]),
    ("商贸旅游", "swuj", [
        ("旅游服务", "wlj", None, _l3("强制购物 景区服务 旅行社纠纷")),
        ("商业网点", "swuj", None, _l3("菜市场管理 商场服务 便民网点")),
        ("预付卡消费", "swuj", None, _l3("健身卡退费 美发卡退费 商家跑路")),
        ("快递外卖", "swuj", None, _l3("快递丢件 快递柜收费 外卖配送")),
    ]),
    ("市场监管", "scjg", [
        ("食品安全", "scjg", None, _l3("过期食品 餐馆卫生 无证食品经营 食物中毒")),
        ("价格监管", "scjg", None, _l3("乱收费 价格欺诈 明码标价")),
        ("消费维权", "scjg", None, _l3("产品质量 虚假宣传 退换货 售后服务")),
        ("计量与特种设备", "scjg", None, _l3("缺斤短两 电梯年检 加油站计量")),
        ("登记注册", "scjg", None, _l3("营业执照 个体户注册 企业年报")),
    ]),
    ("公共安全", "gaj", [
        ("治安管理", "gaj", None, _l3("打架斗殴 盗窃 可疑人员 聚众赌博", {"打架斗殴": "110", "盗窃": "110"})),
        ("消防安全", "yjj", None, _l3("火情 消防通道堵塞 电动车充电 消防设施损坏", {"火情": "119"})),
        ("安全生产", "yjj", None, _l3("企业安全隐患 危化品 高空坠物")),
        ("户籍证件", "gaj", None, _l3("户口迁移 身份证办理 居住证")),
        ("电信诈骗", "gaj", None, _l3("电话诈骗 网络诈骗")),
    ]),
    ("民政", "mzj", [
        ("社会救助", "mzj", None, _l3("低保申请 临时救助 特困供养")),
        ("养老服务", "mzj", None, _l3("养老院 居家养老 高龄补贴 老年食堂")),
        ("婚姻殡葬", "mzj", None, _l3("婚姻登记 殡葬服务 公墓管理")),
        ("残疾人与儿童福利", "mzj", None, _l3("残疾人补贴 无障碍设施 留守儿童")),
        ("社区治理", "mzj", "street", _l3("邻里纠纷 社区服务 流浪乞讨")),
    ]),
    ("住房保障", "fgj", [
        ("保障性住房", "fgj", None, _l3("公租房申请 人才公寓 保障房分配")),
        ("房屋租赁", "fgj", None, _l3("租赁纠纷 群租房 中介纠纷")),
        ("房产交易", "fgj", None, _l3("不动产登记 商品房交付 房屋质量")),
        ("住房公积金", "gjj", None, _l3("公积金提取 公积金贷款 公积金缴存")),
        ("老旧小区改造", "zjj", "district", _l3("加装电梯 外墙脱落 管网改造")),
    ]),
    ("农业农村", "nyj", [
        ("农业生产", "nyj", None, _l3("农资质量 农机补贴 种植补贴")),
        ("动物防疫", "nyj", None, _l3("畜禽防疫 病死畜禽 流浪犬")),
        ("农村管理", "nyj", "street", _l3("宅基地 土地流转 村务公开")),
        ("农村环境", "nyj", None, _l3("农村厕所 农村污水 养殖污染")),
    ]),
    ("公用事业", "swj", [
        ("供水", "swj", None, _l3("停水 水压低 水质问题 水费")),
        ("供电", "gdgs", None, _l3("停电 电压不稳 电费")),
        ("燃气", "rqjt", None, _l3("燃气泄漏 燃气供应 燃气费", {"燃气泄漏": "119"})),
        ("通信网络", "txb", None, _l3("信号差 宽带故障 骚扰电话")),
        ("防汛排涝", "swj", None, _l3("道路积水 小区内涝 河道水位")),
    ]),
]  # fmt: skip

# City departments: code, name, duty tier. Codes are short pinyin initials because people type them
# (handler_zjj).
DEPARTMENTS: list[tuple[str, str, int]] = [
    ("zjj", "民声市住房和城乡建设局", 2),
    ("cgj", "民声市城市管理局", 1),
    ("sthjj", "民声市生态环境局", 2),
    ("jtj", "民声市交通运输局", 2),
    ("gaj", "民声市公安局", 1),
    ("rsj", "民声市人力资源和社会保障局", 2),
    ("ybj", "民声市医疗保障局", 3),
    ("jyj", "民声市教育局", 2),
    ("wlj", "民声市文化广电旅游局", 3),
    ("wjw", "民声市卫生健康委员会", 1),
    ("swuj", "民声市商务局", 3),
    ("scjg", "民声市市场监督管理局", 2),
    ("yjj", "民声市应急管理局", 1),
    ("mzj", "民声市民政局", 2),
    ("fgj", "民声市住房保障和房产管理局", 2),
    ("zrj", "民声市自然资源和规划局", 3),
    ("gjj", "民声市住房公积金管理中心", 3),
    ("nyj", "民声市农业农村局", 3),
    ("swj", "民声市水务集团", 1),
    ("gdgs", "国网民声供电公司", 1),
    ("rqjt", "民声市燃气集团", 1),
    ("txb", "民声市通信管理办公室", 3),
]
HOTLINE_UNIT = "rx12345"
RESPONSE_TEAMS: list[tuple[str, str, str]] = [
    ("team_cgkc", "城管快速处置队", "cgj"),
    ("team_szqx", "市政设施抢修队", "cgj"),
    ("team_yjqx", "应急抢险救援队", "yjj"),
    ("team_gsqx", "供水抢修队", "swj"),
    ("team_xfwq", "消费维权快速响应队", "scjg"),
]
EXTERNALS: list[tuple[str, str]] = [
    ("110", "110指挥中心"),
    ("119", "119消防救援指挥中心"),
    ("120", "120急救指挥中心"),
    ("122", "122交通事故报警中心"),
]
# Level-2 categories whose routing rule carries assisting units (joint handling).
ROUTE_ASSISTS: dict[str, tuple[str, ...]] = {
    "市政设施": ("team_szqx",),
    "违法建设": ("cgj",),
    "老旧小区改造": ("zjj",),
    "供水": ("team_gsqx",),
    "食品安全": ("team_xfwq",),
    "安全生产": ("team_yjqx",),
}


def _words(*lines: str) -> list[str]:
    """Space-separated words written over several short lines (each Chinese character counts double)."""
    return " ".join(lines).split()


# (name, alias): the first is the old centre, the others lie east, north, west and south of it.
DISTRICTS = [
    ("鼓楼区", "鼓楼"),
    ("东城区", "东城"),
    ("北湖区", "北湖"),
    ("西山区", "西山"),
    ("南江区", "南江"),
]
_STEMS = _words(
    "幸福 和平 光明 胜利 建设 解放 新华 人民 团结 友谊 前进 东风 红星 民主 振兴 繁荣 兴隆 永安",
    "长乐 太平 安康 丰收 春晖 朝阳 向阳 青山 白云 清泉 翠湖 柳湾 桃源 梅林 竹溪 松岭 枫桥 杏花",
    "荷塘 金沙 银河 玉泉 凤凰 龙山 狮山 象山 鹤岭 石桥 沙洲 新桥 临湖 望江 长岗 高塘 马鞍 双溪",
    "三元 五里 七星 八里 九龙 文昌 文华 朝晖 湖滨 紫阳 清波 长庆 古塘 华丰 兴华 安吉 德胜 万寿",
    "瑞丰 康宁 惠民 育才 书院 状元 府前 城隍 仓桥 米市 盐仓 柴桥 茶亭 水磨 油坊 丝绸",
)
_STEM_A = "金银玉翠青紫新长永福和安康华明光春秋丰盛兴荣嘉云湖江河松竹梅兰桂枫柳杨文德仁义正阳古龙凤鹤锦芳"
_STEM_B = "苑园湾桥塘坊庄岭溪港泉亭门里山林洲浦田坝口堰墩埠"
_COMPOUND_STEMS = _words(
    "阳光 金色 绿城 碧水 蓝湾 海棠 紫荆 香樟 桂花 星河 云锦 锦绣 御景 江南 水岸 书香 春江 明月",
    "清风 翠竹 丽景 东方 世纪 时代 金地 华庭 龙湖 滨江 湖畔 新城 未来 幸福里 九溪 梧桐 银杏 樱花",
    "芙蓉 万和 宝龙 嘉禾 富春 钱塘 丹桂 雅居 康城",
)
# Developer-style names (金都, 嘉悦) widen the pool so that a few thousand compounds keep unique names.
_COMPOUND_STEMS += [
    a + b for a in "金银玉翠青紫新长永福和安康华明光春丰盛兴荣嘉云" for b in "都湾庭景秀悦林溪澜璟"
]
_COMPOUND_SUFFIX = _words(
    "花园 家园 小区 苑 新村 公寓 名苑 雅苑 嘉园 府 一区 二区 三区 北区 南区 城 华庭 佳苑",
)
_ROAD_STEMS = _words(
    "文一 文二 文三 学院 建国 人民 中山 环城 体育 工人 延安 庆春 凤起 秋涛 机场 火车站 江滨 湖墅",
    "湖滨 教工 天目 保俶 曙光 求是 紫金 丰潭 古墩 莫干 上塘 石祥 德胜 东新 沈半 留和 之江 滨盛",
    "江南 长河 西兴 浦沿 钱江 新业 市心 通惠",
)
_DIRECTIONS = ["", "", "", "东", "西", "南", "北", "中"]
# Plain 路 most often; duplicates weight the draw.
_ROAD_SUFFIX = [d + k for d in _DIRECTIONS for k in ("路", "路", "路", "路", "路", "街", "街", "大道", "巷")]
_NUMERALS = "一二三四五六七八九十"


# --------------------------------------------------------------------------------------------------- geometry
Cell = tuple[int, int]  # (column, row)


def _lattice() -> tuple[list[float], list[float]]:
    lons = [round(LON0 + i * (LON1 - LON0) / NCOLS, 6) for i in range(NCOLS + 1)]
    lats = [round(LAT0 + j * (LAT1 - LAT0) / NROWS, 6) for j in range(NROWS + 1)]
    return lons, lats


def _city_cells(rng: random.Random) -> list[Cell]:
    """Cells inside a wobbly ellipse. Each row keeps one contiguous run of columns and neighbouring runs
    overlap, so the city is connected and has no holes."""
    phase1, phase2 = rng.uniform(0, 6.3), rng.uniform(0, 6.3)
    cells = []
    for r in range(NROWS):
        y = (r + 0.5) / NROWS * 2 - 1
        half = math.sqrt(max(0.0, 1 - y * y)) * (1 + 0.07 * math.sin(3 * y + phase1))
        half = max(half, 0.2)
        shift = 0.05 * math.sin(2 * y + phase2)
        for c in range(NCOLS):
            x = (c + 0.5) / NCOLS * 2 - 1
            if abs(x - shift) <= half:
                cells.append((c, r))
    return cells


def _bfs_regions(cells: set[Cell], seeds: list[Cell]) -> list[list[Cell]]:
    """Multi-source BFS over edge neighbours: every cell joins the seed that reaches it first. Each region is
    connected because a cell's BFS parent belongs to the same region."""
    owner: dict[Cell, int] = {}
    queue: deque[Cell] = deque()
    for i, s in enumerate(seeds):
        owner[s] = i
        queue.append(s)
    while queue:
        c, r = queue.popleft()
        i = owner[(c, r)]
        for n in ((c + 1, r), (c - 1, r), (c, r + 1), (c, r - 1)):
            if n in cells and n not in owner:
                owner[n] = i
                queue.append(n)
    regions: list[list[Cell]] = [[] for _ in seeds]
    for cell in sorted(cells):
        regions[owner[cell]].append(cell)
    return regions


def _centroid(cells: Iterable[Cell]) -> tuple[float, float]:
    cs = list(cells)
    return sum(c for c, _ in cs) / len(cs), sum(r for _, r in cs) / len(cs)


def _nearest(cells: Iterable[Cell], point: tuple[float, float]) -> Cell:
    return min(cells, key=lambda c: ((c[0] - point[0]) ** 2 + (c[1] - point[1]) ** 2, c))


def _partition(
    cells: list[Cell], k: int, rng: random.Random, seeds: list[Cell] | None = None
) -> list[list[Cell]]:
    """Split a connected set of cells into k connected, roughly balanced regions (farthest-point seeds, then a
    few Lloyd steps that move each seed to its region's centre)."""
    k = min(k, len(cells))
    cellset = set(cells)
    ordered = sorted(cells)
    if seeds is None:
        chosen = [rng.choice(ordered)]
        while len(chosen) < k:
            chosen.append(
                max(ordered, key=lambda c: min((c[0] - s[0]) ** 2 + (c[1] - s[1]) ** 2 for s in chosen))
            )
        seeds = chosen
    regions = _bfs_regions(cellset, seeds)
    for _ in range(4):
        seeds = [_nearest(reg, _centroid(reg)) for reg in regions]
        regions = _bfs_regions(cellset, seeds)
    return [reg for reg in regions if reg]


def _geojson(geom: Any) -> dict[str, Any]:
    """Shapely polygon → GeoJSON dict with lists (not tuples) and a counter-clockwise exterior (RFC 7946)."""
    geom = orient(geom.simplify(0), 1.0)
    if geom.geom_type != "Polygon":  # pragma: no cover - the BFS partition guarantees connected areas
        raise ValueError(f"area is not a single polygon: {geom.geom_type}")
    m = mapping(geom)
    return {"type": "Polygon", "coordinates": [[[x, y] for x, y in ring] for ring in m["coordinates"]]}


# ---------------------------------------------------------------------------------------------------- builder
class _Names:
    """Hands out unique names so that a name identifies one area or place (a gazetteer needs that)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()
        stems = list(_STEMS)
        rng.shuffle(stems)
        extra = [a + b for a in _STEM_A for b in _STEM_B]
        rng.shuffle(extra)
        self.area_stems = stems + extra

    def area_stem(self) -> str:
        while True:
            s = self.area_stems.pop(0)
            if s not in self.used:
                self.used.add(s)
                return s

    def pick(self, stems: list[str], suffixes: list[str], tries: int = 50) -> str | None:
        """A new name stem + suffix, or None when the combinations seem used up."""
        for _ in range(tries):
            n = self.rng.choice(stems) + self.rng.choice(suffixes)
            if n not in self.used:
                self.used.add(n)
                return n
        return None


def generate_city(seed: int = 2026) -> DemoCity:
    """Build the whole demo city from a seed (a few hundred milliseconds)."""
    rng = random.Random(seed)
    lons, lats = _lattice()
    names = _Names(rng)

    def cell_box(cell: Cell) -> Any:
        c, r = cell
        return box(lons[c], lats[r], lons[c + 1], lats[r + 1])

    city_cells = _city_cells(rng)
    cx, cy = _centroid(city_cells)
    span = max(NCOLS, NROWS) / 2
    # District seeds: the centre, then east, north, west, south (lattice rows grow northwards with latitude).
    offsets = [(0, 0), (0.62, 0), (0, 0.62), (-0.62, 0), (0, -0.62)]
    cellset = set(city_cells)
    dseeds = [_nearest(cellset, (cx + dx * span, cy + dy * span)) for dx, dy in offsets]
    district_regions = _partition(city_cells, len(DISTRICTS), rng, seeds=dseeds)

    areas: list[AreaSpec] = []
    grid_bounds: dict[str, tuple[float, float, float, float]] = {}
    street_info: list[tuple[str, str, str, list[Cell]]] = []  # (code, name, kind, cells)
    community_info: list[tuple[str, str, str, list[Cell], list[str]]] = []  # (code, name, stem, cells, grids)

    def ordered_regions(regions: list[list[Cell]]) -> list[list[Cell]]:
        # Number children from north-west to south-east, as a reader of a map would.
        return sorted(regions, key=lambda reg: (-round(_centroid(reg)[1] / 3), _centroid(reg)[0]))

    district_polys = []
    for di, dcells in enumerate(district_regions):
        dname, dalias = DISTRICTS[di]
        dcode = f"{CITY_CODE}{di + 1:02d}"
        sregions = ordered_regions(_partition(dcells, STREETS_PER_DISTRICT, rng))
        # Urban streets lie near the city centre; the outer ones are towns (镇) and a few townships (乡).
        dist = [math.dist(_centroid(s), (cx, cy)) / span for s in sregions]
        kinds = ["街道" if d < 0.55 else ("乡" if d > 0.85 and rng.random() < 0.5 else "镇") for d in dist]
        counters = {"街道": 0, "镇": 100, "乡": 200}
        street_polys = []
        for scells, skind in zip(sregions, kinds, strict=True):
            counters[skind] += 1
            scode = f"{dcode}{counters[skind]:03d}"
            sstem = names.area_stem()
            sname = sstem + skind
            cregions = ordered_regions(_partition(scells, COMMUNITIES_PER_STREET, rng))
            scentre = _centroid(scells)
            central = min(range(len(cregions)), key=lambda i: math.dist(_centroid(cregions[i]), scentre))
            ccount = {"社区": 0, "村": 200}
            community_polys = []
            for ci, ccells in enumerate(cregions):
                # Towns have a 社区 at their seat and villages around it; townships are all villages.
                ckind = "社区" if skind == "街道" or (skind == "镇" and ci == central) else "村"
                ccount[ckind] += 1
                ccode = f"{scode}{ccount[ckind]:03d}"
                cstem = names.area_stem()
                cname = cstem + ckind
                grid_codes = []
                for gi, gcell in enumerate(sorted(ccells, key=lambda c: (-c[1], c[0]))):
                    gcode = f"{ccode}{gi + 1:03d}"
                    g = cell_box(gcell)
                    grid_bounds[gcode] = tuple(g.bounds)  # type: ignore[assignment]
                    areas.append(
                        AreaSpec(
                            gcode, f"第{gi + 1}网格", "grid", ccode, (f"{cname}第{gi + 1}网格",), _geojson(g)
                        )
                    )
                    grid_codes.append(gcode)
                cpoly = unary_union([cell_box(c) for c in ccells])
                community_polys.append(cpoly)
                caliases = (cstem, cstem + ("村委会" if ckind == "村" else "社区居委会"))
                areas.append(AreaSpec(ccode, cname, "community", scode, caliases, _geojson(cpoly)))
                community_info.append((ccode, cname, cstem, ccells, grid_codes))
            spoly = unary_union(community_polys)
            street_polys.append(spoly)
            areas.append(AreaSpec(scode, sname, "street", dcode, (sstem,), _geojson(spoly)))
            street_info.append((scode, sname, skind, scells))
        dpoly = unary_union(street_polys)
        district_polys.append(dpoly)
        areas.append(AreaSpec(dcode, dname, "district", CITY_CODE, (dalias,), _geojson(dpoly)))
    areas.append(
        AreaSpec(CITY_CODE, CITY_NAME, "city", None, ("民声",), _geojson(unary_union(district_polys)))
    )
    # Parents before children reads better in a seeder and lets it insert in one pass.
    areas.sort(key=lambda a: (len(a.code), a.code))
    area_by_code = {a.code: a for a in areas}

    places = _make_places(rng, names, area_by_code, community_info, grid_bounds)
    categories = _make_categories()
    units = _make_units(rng, areas)
    users = _make_users(rng, units)
    routing = _make_routing(categories, areas)
    return DemoCity(CITY_NAME, seed, areas, places, categories, units, users, routing, grid_bounds)


def _make_places(
    rng: random.Random,
    names: _Names,
    area_by_code: dict[str, AreaSpec],
    community_info: list[tuple[str, str, str, list[Cell], list[str]]],
    grid_bounds: dict[str, tuple[float, float, float, float]],
) -> list[PlaceSpec]:
    places: list[PlaceSpec] = []
    school_no = hospital_no = 0

    def add(name: str | None, ccode: str, grids: list[str], kind: str, aliases: tuple[str, ...] = ()) -> None:
        if name is None:
            return
        gcode = rng.choice(grids)
        x0, y0, x1, y1 = grid_bounds[gcode]
        lon = round(x0 + (x1 - x0) * rng.uniform(0.1, 0.9), 6)
        lat = round(y0 + (y1 - y0) * rng.uniform(0.1, 0.9), 6)
        places.append(PlaceSpec(name, ccode, kind, aliases, lat, lon, gcode))

    for ccode, cname, cstem, _cells, grids in community_info:
        street = area_by_code[ccode[:9]]
        district = area_by_code[ccode[:6]]
        sstem = street.aliases[0]
        village = cname.endswith("村")
        # Villages have fewer named compounds and roads than urban communities; sizes scale with the area.
        n_compound = (4 if village else 9) + len(grids) + rng.randint(0, 3)
        n_road = 2 + len(grids) // 2 + rng.randint(0, 1)
        first = ["新村", "安置小区", "农居点"] if village else ["一区", "二区", "新村", "小区"]
        add(names.pick([cstem], first), ccode, grids, "小区")
        for _ in range(n_compound - 1):
            nm = names.pick(_COMPOUND_STEMS, _COMPOUND_SUFFIX)
            if nm is not None:
                add(nm, ccode, grids, "小区", (nm + "小区",) if not nm.endswith("小区") else ())
        for _ in range(n_road):
            add(
                names.pick([*_ROAD_STEMS, sstem, cstem, rng.choice(_STEMS)], _ROAD_SUFFIX), ccode, grids, "路"
            )
        if rng.random() < (0.45 if not village else 0.3):
            add(names.pick([cstem], ["农贸市场", "菜市场", "综合市场"]), ccode, grids, "市场")
        if rng.random() < 0.5:
            if rng.random() < 0.15:
                school_no += 1
                no = _cn_number(school_no)
                add(names.pick([f"民声市第{no}"], ["中学"]), ccode, grids, "学校", (f"市{no}中",))
            else:
                kinds = ["小学", "中学", "幼儿园", "实验小学", "初级中学"]
                add(names.pick([cstem, sstem], kinds), ccode, grids, "学校")
        if rng.random() < 0.25:
            if rng.random() < 0.3:
                hospital_no += 1
                no = _cn_number(hospital_no)
                add(names.pick([f"民声市第{no}"], ["人民医院"]), ccode, grids, "医院", (f"市{no}医院",))
            elif rng.random() < 0.5:
                add(names.pick([street.name], ["社区卫生服务中心"]), ccode, grids, "医院")
            else:
                kinds = ["中医院", "妇幼保健院", "人民医院", "口腔医院"]
                add(names.pick([district.aliases[0]], kinds), ccode, grids, "医院")
        if rng.random() < 0.3:
            stems = [cstem, rng.choice(_COMPOUND_STEMS)]
            add(names.pick(stems, ["公园", "湿地公园", "体育公园"]), ccode, grids, "公园")
        if not village and rng.random() < 0.2:
            stems = [sstem, rng.choice(_COMPOUND_STEMS)]
            add(names.pick(stems, ["购物中心", "广场", "商厦"]), ccode, grids, "商场")
    return places


def _cn_number(n: int) -> str:
    """1..99 in Chinese numerals (一, 十二, 二十三)."""
    if n <= 10:
        return _NUMERALS[n - 1]
    tens, ones = divmod(n, 10)
    return ("" if tens == 1 else _NUMERALS[tens - 1]) + "十" + (_NUMERALS[ones - 1] if ones else "")


def _make_categories() -> list[CategorySpec]:
    out = []
    for i, (n1, _lead, l2s) in enumerate(CATEGORY_TREE, start=1):
        c1 = f"{i:02d}"
        out.append(CategorySpec(c1, n1, 1, None))
        for j, (n2, _lead2, _local, l3s) in enumerate(l2s, start=1):
            c2 = f"{c1}{j:02d}"
            out.append(CategorySpec(c2, n2, 2, c1))
            for k, (n3, _t) in enumerate(l3s, start=1):
                out.append(CategorySpec(f"{c2}{k:02d}", n3, 3, c2))
    return out


def transfer_targets() -> dict[str, str]:
    """Level-3 category code → external system ("110", "119", "120", "122") that takes such requests."""
    out = {}
    for i, (_n1, _lead, l2s) in enumerate(CATEGORY_TREE, start=1):
        for j, (_n2, _lead2, _local, l3s) in enumerate(l2s, start=1):
            for k, (_n3, target) in enumerate(l3s, start=1):
                if target:
                    out[f"{i:02d}{j:02d}{k:02d}"] = target
    return out


def _phone(rng: random.Random) -> str:
    return f"0571-8{rng.randint(0, 9999999):07d}"


def _make_units(rng: random.Random, areas: list[AreaSpec]) -> list[UnitSpec]:
    hotline = "民声市12345政务服务便民热线中心"
    units = [UnitSpec(HOTLINE_UNIT, hotline, "department", None, CITY_CODE, 1, "12345", fake_name(rng))]
    for code, name, tier in DEPARTMENTS:
        units.append(UnitSpec(code, name, "department", None, CITY_CODE, tier, _phone(rng), fake_name(rng)))
    for code, name, parent in RESPONSE_TEAMS:
        units.append(UnitSpec(code, name, "response_team", parent, CITY_CODE, 1, _phone(rng), fake_name(rng)))
    for code, name in EXTERNALS:
        units.append(UnitSpec(code, name, "external", None, CITY_CODE, 1, code, fake_name(rng)))
    districts = [a for a in areas if a.level == "district"]
    for d in districts:
        units.append(
            UnitSpec(f"dist{d.code}", f"{d.name}人民政府", "district_office", None, d.code, 2, _phone(rng),
                     fake_name(rng))
        )  # fmt: skip
    for s in (a for a in areas if a.level == "street"):
        office = "办事处" if s.name.endswith("街道") else "人民政府"
        units.append(
            UnitSpec(f"st{s.code}", s.name + office, "street_office", f"dist{s.parent_code}", s.code, 2,
                     _phone(rng), fake_name(rng))
        )  # fmt: skip
    # One community committee and one grid team per district: enough to show the lowest tiers of the org tree
    # without a unit (and a login) for each of the 200 communities.
    communities = [a for a in areas if a.level == "community"]
    for d in districts:
        c = next(a for a in communities if a.code.startswith(d.code))
        cunit = f"cm{c.code}"
        committee = "村民委员会" if c.name.endswith("村") else "居民委员会"
        units.append(
            UnitSpec(cunit, c.name + committee, "community", f"st{c.parent_code}", c.code, 3, _phone(rng),
                     fake_name(rng))
        )  # fmt: skip
        g = c.code + "001"
        units.append(
            UnitSpec(
                f"gt{g}", f"{c.name}第1网格工作组", "grid_team", cunit, g, 3, fake_mobile(rng), fake_name(rng)
            )
        )
    return units


def _make_users(rng: random.Random, units: list[UnitSpec]) -> list[UserSpec]:
    users: list[UserSpec] = []

    def add(username: str, role: str, unit: str | None) -> None:
        users.append(UserSpec(username, fake_name(rng), role, unit, fake_mobile(rng)))

    add("admin", "admin", None)
    for i in range(1, 4):
        add(f"operator{i}", "operator", HOTLINE_UNIT)
    for i in range(1, 3):
        add(f"dispatcher{i}", "dispatcher", HOTLINE_UNIT)
        add(f"supervisor{i}", "supervisor", HOTLINE_UNIT)
        add(f"followup{i}", "followup", HOTLINE_UNIT)
    add("leader1", "leader", None)  # the city leader who receives the last rung of escalations
    for u in units:
        if u.kind == "district_office":
            add(f"leader_{u.code}", "leader", u.code)
    # One handler per handling unit; external systems are reached by interface, not by a person logging in.
    for u in units:
        if u.kind != "external" and u.code != HOTLINE_UNIT:
            add(f"handler_{u.code}", "handler", u.code)
    return users


def _make_routing(categories: list[CategorySpec], areas: list[AreaSpec]) -> list[RouteSpec]:
    routes: list[RouteSpec] = []
    streets = [a for a in areas if a.level == "street"]
    districts = [a for a in areas if a.level == "district"]
    for i, (_n1, lead1, l2s) in enumerate(CATEGORY_TREE, start=1):
        c1 = f"{i:02d}"
        routes.append(RouteSpec(c1, None, lead1))
        for j, (n2, lead2, local, _l3s) in enumerate(l2s, start=1):
            c2 = f"{c1}{j:02d}"
            assists = ROUTE_ASSISTS.get(n2, ())
            routes.append(RouteSpec(c2, None, lead2, tuple(a for a in assists if a != lead2)))
            # Local matters go to the office that holds the territory, with the department assisting.
            if local == "street":
                for s in streets:
                    routes.append(RouteSpec(c2, s.code, f"st{s.code}"))
            elif local == "district":
                for d in districts:
                    routes.append(
                        RouteSpec(c2, d.code, f"dist{d.code}", tuple(dict.fromkeys((lead2, *assists))))
                    )
    return routes
