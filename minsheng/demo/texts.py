"""Chinese request texts, addresses and fake citizens for the demo city.

:func:`generate_request` writes what a citizen says (title, detail, address, kind, urgency, optional map
point) for a category and an area of a :class:`~minsheng.demo.city.DemoCity`; :func:`generate_citizen` makes a
valid-looking but fake identity; :func:`jurisdiction_test_set` yields addresses with the area they must
resolve to.

The texts are built from many templates per first-level category, with slot fillers (places, times, durations,
amounts, tones) and per-level-3 problem phrases. Each category has its own vocabulary so that a classifier can
learn it, with the overlap real requests have: shared complaint phrasing, shared places, and a few requests
that mention a second problem of another category. All texts are written here; none is taken from a data set.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # city.py imports this module for names and phones, so only import it for type checking
    from minsheng.demo.city import DemoCity, PlaceSpec

__all__ = [
    "ISSUES",
    "KINDS",
    "Citizen",
    "RequestText",
    "build_address",
    "detail_jurisdiction_test_set",
    "fake_id_number",
    "fake_mobile",
    "fake_name",
    "generate_citizen",
    "generate_request",
    "id_check_digit",
    "is_valid_id_number",
    "jurisdiction_test_set",
]

KINDS = ("consultation", "help", "complaint", "report", "suggestion", "praise")
URGENCIES = ("normal", "urgent", "emergency")


def _words(*lines: str) -> list[str]:
    """Space-separated words written over several short lines (each Chinese character counts double)."""
    return " ".join(lines).split()


@dataclass(frozen=True)
class RequestText:
    title: str
    detail: str
    address: str
    kind: str  # one of KINDS
    urgency: str  # one of URGENCIES
    place_name: str | None
    lat: float | None
    lon: float | None


@dataclass(frozen=True)
class Citizen:
    name: str
    phone: str
    id_number: str


# ------------------------------------------------------------------------------------------------ fake people
# Surnames repeated by rough frequency, so 王/李/张 come up as often as they do on a real hotline.
_SURNAMES = (
    "王王王王李李李李张张张张刘刘刘陈陈陈杨杨黄黄赵赵吴吴周周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
    "于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严"
)
_GIVEN_M = "伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆帅旭宁龙林欢阳建国志文斌峰晨"
_GIVEN_F = "芳娜敏静丽艳娟霞秀燕玲桂英华慧巧美娅婷雪琳晶颖倩洁琴云莉萍红梅兰凤秋月佳欣怡"
# Six-digit division codes for the first part of ID numbers: the demo city's districts (339901-339905) and
# some real-format codes elsewhere, since many callers were born in another province.
_ID_REGIONS = _words(
    "339901 339902 339903 339904 339905 339901 339902 339903 330102 330106 330108 330110 330521 330681",
    "320106 340104 360102 410105 420106 430103 510107 520102 130102 370102 350102 450103 610113 230103",
)
# ISO 7064 MOD 11-2 weights of ID digits 1..17
_ID_WEIGHTS = (7, 9, 1, 0, 8, 0, 4, 2, 5, 10, 3, 6, 9, 8, 4, 2, 1)
_ID_CHECK = "10X98765432"
_MOBILE_PREFIXES = _words(
    "130 131 132 133 134 135 136 137 138 139 150 151 152 153 155 156 157 158 159 180 181 182 183 184",
    "185 186 187 188 189 191 193 195 198 199",
)


def fake_name(rng: random.Random, male: bool | None = None) -> str:
    """A common-looking two- or three-character Chinese name."""
    if male is None:
        male = rng.random() < 0.5
    pool = _GIVEN_M if male else _GIVEN_F
    given = rng.choice(pool) if rng.random() < 0.35 else rng.choice(pool) + rng.choice(pool)
    return rng.choice(_SURNAMES) + given


def fake_mobile(rng: random.Random) -> str:
    """An 11-digit mobile number starting 13/15/18/19."""
    return rng.choice(_MOBILE_PREFIXES) + f"{rng.randint(0, 99_999_999):08d}"


def id_check_digit(first17: str) -> str:
    """The 18th character of a resident ID number (GB 11643, ISO 7064 MOD 11-2)."""
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def is_valid_id_number(id_number: str) -> bool:
    return (
        len(id_number) == 18
        and id_number[:17].isdigit()
        and id_check_digit(id_number[:17]) == id_number[17].upper()
    )


def fake_id_number(rng: random.Random, male: bool | None = None) -> str:
    """An 18-character resident ID with a real date, sex digit and check digit (fake region and sequence)."""
    if male is None:
        male = rng.random() < 0.5
    year = rng.randint(1940, 2006)
    month = rng.randint(1, 12)
    day = rng.randint(1, 28)
    seq = rng.randint(0, 499) * 2 + (1 if male else 0)  # the 17th digit is odd for men, even for women
    body = f"{rng.choice(_ID_REGIONS)}{year:04d}{month:02d}{day:02d}{seq:03d}"
    return body + id_check_digit(body)


def generate_citizen(rng: random.Random) -> Citizen:
    """A caller. A quarter give only their surname (王先生, 李女士), as callers often do."""
    male = rng.random() < 0.5
    name = fake_name(rng, male)
    if rng.random() < 0.25:
        name = name[0] + ("先生" if male else "女士")
    return Citizen(name, fake_mobile(rng), fake_id_number(rng, male))


# -------------------------------------------------------------------------------------------- problem phrases
# Level-3 category name → what people say about it. These carry most of each category's vocabulary.
_ISSUES_TEXT = """
道路破损
    路面坑坑洼洼，电动车经过差点摔倒|人行道地砖松动翘起，下雨踩上去溅一身泥水|
    马路中间塌了一个大坑，一直没人修
路灯故障
    路灯坏了好几盏，晚上黑漆漆的很不安全|路灯白天亮晚上不亮|一整排路灯都不亮，老人晚上出门不敢走
井盖缺失
    窨井盖破损塌陷，车辆压过去咣咣响|雨水井盖不见了，有人差点掉下去|井盖松动翘起，存在安全隐患
排水管网堵塞
    下水道堵塞，污水从窨井里冒出来|雨水管道堵了，一下雨路面就积水|排水管破裂，污水流得满地都是
施工噪音
    工地施工噪音太大，打桩机从早响到晚|隔壁工地切割钢筋的声音特别刺耳|工地机器轰鸣，家里老人孩子休息不好
夜间施工
    工地半夜还在浇筑混凝土，吵得根本睡不着|晚上十一点以后还在施工，也没看到夜间施工许可公示|
    凌晨还有渣土车进出工地
工地扬尘
    工地没有围挡也不洒水，灰尘漫天|工地裸土没有覆盖，刮风时尘土飞扬|施工扬尘严重，家里窗台一天就一层灰
渣土车抛洒
    渣土车沿路抛洒泥土，路面全是泥|渣土车没有密闭，掉下来的土块砸到了车|渣土车车轮带泥上路，道路脏得不行
违章搭建
    楼顶有人违章搭建彩钢棚|一楼住户私自扩建院子占用公共通道|有人在小区绿地上违法搭建房屋
拆改承重墙
    楼上装修砸承重墙，整栋楼都在震|邻居装修拆改承重结构，担心房屋安全|装修队把阳台承重墙打掉了
侵占绿地
    公共绿地被人圈起来种菜|绿化带被铲掉改成了停车位|有人把小区绿地围起来当自家花园
物业服务
    物业不作为，楼道卫生没人打扫|物业管理混乱，门禁坏了很久没人修|小区保安经常不在岗，外来人员随便进出
物业收费
    物业费涨价没有经过业主同意|物业乱收停车费和装修押金|物业强制收取二次供水费用
电梯故障
    电梯经常困人，物业修了又坏|电梯运行时异响抖动，大家都不敢坐|电梯停运半个多月了，老人上下楼很困难
小区停车
    小区车位被外来车辆占用|消防通道上停满了车|小区停车位只租不售，租金还一直涨
占道经营
    流动摊贩占道经营，人行道都走不了|夜市摊位占用马路，造成交通堵塞|水果店把货摊摆到了人行道上
乱贴小广告
    楼道里贴满了开锁办证的小广告|电线杆和墙面上到处是牛皮癣广告|有人在小区门口乱发乱贴小广告
广告牌安全
    楼顶广告牌锈蚀松动，刮风时摇摇晃晃|店招广告牌快要掉下来了|户外广告牌支架断裂存在安全隐患
共享单车乱停
    共享单车乱停乱放堵住了盲道|地铁口共享单车堆成山|共享单车停在小区门口影响通行
餐饮油烟
    楼下饭店油烟直排，家里不敢开窗|烧烤店油烟熏得整栋楼都是味道|餐馆没有安装油烟净化器
露天焚烧
    有人在空地上焚烧垃圾，黑烟滚滚|田里焚烧秸秆，烟雾很大|有人露天焚烧塑料和电线，气味刺鼻
工业废气
    附近工厂晚上偷排废气，味道很呛|化工厂烟囱冒黄烟|厂里排放的废气让人头晕恶心
异味扰民
    垃圾中转站臭味熏天|附近养殖场异味很重，夏天更严重|污水处理站散发恶臭
河道污染
    河里漂满垃圾，水面发黑|河道里出现大量死鱼|河水发臭，还有油污漂浮
偷排污水
    有企业趁夜间往河里偷排污水|洗车店污水直接排进雨水管|工厂私设暗管排放废水
黑臭水体
    小区旁边的河浜又黑又臭|池塘水质发黑发臭，蚊虫滋生|沟渠污水长期淤积发臭
商铺噪音
    商铺门口音响放得震天响|超市搞促销用大喇叭喊个不停|店铺空调外机噪音很大，晚上睡不着
广场舞噪音
    广场舞音乐声太大，每天晚上吵到九点多|早上六点就有人放广场舞音乐|跳舞的音响开得太响，孩子没法写作业
工厂噪音
    工厂机器二十四小时运转噪音扰民|厂房冷却塔噪音很大|加工厂晚上加班，冲床声音吵得人睡不着
娱乐场所噪音
    酒吧音乐声一直放到凌晨|KTV噪音扰民，半夜还有人大声喧哗|楼下棋牌室每天吵到深夜
垃圾清运
    垃圾桶满了好几天没人清运，臭气熏天|垃圾站的垃圾堆得溢出来了|小区生活垃圾清运不及时招苍蝇
垃圾分类
    小区垃圾分类桶不够，大家都混着扔|垃圾分类督导员不在岗|分好类的垃圾被清运车混装带走
建筑垃圾乱倒
    有人在路边偷倒装修垃圾|空地上堆满了建筑垃圾|装修垃圾堆在楼道里很久没人清理
公厕保洁
    公共厕所脏乱差，臭味很大|公厕经常锁门不开放|公厕洗手池坏了没人修
树木修剪
    行道树枝太长挡住了路灯和窗户|大树枝叶碰到电线存在隐患|小区树木太高挡光，一楼家里常年晒不到太阳
绿化带破坏
    绿化带被车辆碾压，花草都死了|有人偷挖绿化带里的树|绿化带被改成了菜地
树木病虫害
    行道树长了很多虫子，掉得到处都是|树上毛毛虫泛滥，孩子被蛰了|树木枯死了也没人处理
公交线路
    希望增开一条公交线路到地铁站|公交线路调整后出行很不方便|新小区附近没有公交车
公交服务
    公交车司机态度恶劣|公交车到站不停|公交车发车间隔太长，等了四十分钟
公交站点
    公交站台没有遮雨棚|公交站牌信息错误|公交站点离小区太远
地铁服务
    地铁高峰期太拥挤，希望加密班次|地铁站出入口太少|地铁站无障碍电梯经常停用
出租车拒载
    出租车司机拒载，说不顺路|火车站出租车挑客拒载|晚上打出租车被拒载还被骂
出租车绕路
    出租车故意绕路多收钱|出租车不打表一口价|司机绕远路，车费比平时贵了一倍
网约车服务
    网约车司机中途加价|网约车实际车辆和平台登记不一致|网约车司机危险驾驶
信号灯故障
    路口红绿灯坏了，车辆乱行|信号灯时间设置不合理，行人绿灯太短|红绿灯一直闪黄灯
违章停车
    路边长期违停，堵住了小区出入口|车辆停在人行道上，行人只能走机动车道|有车辆占用盲道停放
交通拥堵
    上下班高峰路口堵得水泄不通|学校门口接送孩子的车辆造成拥堵|路口车道设置不合理导致拥堵
交通事故
    路口发生了交通事故，有人受伤|两辆车相撞堵在路中间|电动车和汽车发生碰撞，需要交警处理
停车收费
    路边停车收费员乱收费|停车场收费标准不公示|停车收费比公示价格高
停车位不足
    老小区停车位严重不足，每天晚上找车位|医院周边停车难|希望增设公共停车位
僵尸车
    小区里有辆车停了一年多没动，落满灰尘|路边僵尸车长期占用车位|废弃车辆堆在路边影响市容
拖欠工资
    公司拖欠工资三个月不发|包工头拖欠农民工工资|老板跑路了，工资一直没拿到
劳动合同
    公司不和员工签劳动合同|试用期满了公司拒绝转正|合同到期公司不续签也不给补偿
违法辞退
    公司无故辞退员工不给经济补偿|怀孕后被公司辞退|公司以各种理由逼员工主动辞职
加班费
    每天加班到晚上十点没有加班费|节假日加班不给三倍工资|公司要求无偿加班
养老保险
    养老金领取资格认证|养老保险转移接续|灵活就业人员养老保险缴纳
失业保险
    失业金申领|失业保险金发放标准|离职后失业登记
工伤认定
    工作时受伤单位不给申报工伤|工伤认定流程|工伤待遇一直没有落实
社保缴费
    公司没有给员工缴纳社保|社保缴费基数按最低标准交|社保断缴后补缴
就业补贴
    高校毕业生就业补贴申领|灵活就业社保补贴|吸纳就业补贴发放
职业培训
    职业技能培训报名|培训补贴申领|技能等级证书查询
创业扶持
    创业担保贷款申请|创业补贴政策|大学生创业园入驻
医保报销
    医保报销比例|门诊费用报销|大病保险报销
医保卡办理
    医保卡补办|医保电子凭证激活|新生儿参保
异地就医备案
    异地就医备案手续|跨省直接结算|异地住院报销
入学报名
    小学新生入学报名|初中入学政策|随迁子女入学
学区划分
    学区划分不合理，家门口的学校上不了|学区调整没有提前公示|划片范围和去年不一样
校车安全
    校车超载|接送学生的车辆没有资质|校车司机开车太快
学校收费
    学校强制订购校服和教辅资料|学校违规收取补课费|学校收取午托费没有公示标准
培训退费
    培训机构拒绝退还剩余课时费|培训机构关门了学费退不回来|交了一年学费机构要跑路
无证办学
    小区里有人无证办辅导班|没有办学许可的培训机构在招生|民宿里开托管班
培训虚假宣传
    培训机构承诺包过结果没通过|培训机构虚假宣传师资|招生宣传夸大提分效果
幼儿园入园
    幼儿园报名入园|公办幼儿园学位不够|幼儿园招生政策
托育服务
    托育机构备案|三岁以下托育补贴|托育机构收费
幼儿园收费
    幼儿园收费太高|幼儿园退园不退费|幼儿园乱收兴趣班费用
体育场馆
    体育馆免费开放时间|游泳馆卫生条件差|篮球场晚上不开灯
图书馆服务
    图书馆开放时间太短|图书馆座位不够|图书借阅证办理
健身器材损坏
    小区健身器材坏了存在安全隐患|公园里健身器材生锈断裂|健身路径器材缺失
医院服务态度
    医生态度恶劣，问两句就不耐烦|护士服务态度差|医院工作人员推诿患者
看病排队
    医院挂号排队时间太长|专家号一号难求|检查要排一个多星期
医疗纠纷
    手术后出现并发症，医院不给说法|医院误诊耽误治疗|医院过度检查乱收费
疫苗接种
    儿童疫苗接种预约|狂犬疫苗哪里可以打|成人疫苗接种点
病媒生物
    小区老鼠泛滥|饭店后厨蟑螂很多|垃圾堆周边蚊蝇滋生
健康证办理
    健康证办理流程|健康证体检地点|健康证到期换证
急救求助
    家里老人突然晕倒需要急救|有人在路边昏迷不醒|孩子高烧抽搐需要救护车
急救车响应
    打了急救电话救护车很久才到|救护车收费不合理|急救人员态度不好
生育登记
    生育登记办理|生育津贴申领|二孩三孩登记
出生医学证明
    出生医学证明补办|出生证明信息填错了要修改|出生证明办理需要的材料
母婴保健
    孕期检查建档|产后访视|母婴室设置
强制购物
    跟团游被导游强制购物|导游威胁不买东西就不走|旅游团安排的购物点卖假货
景区服务
    景区门票价格不合理|景区厕所太少|景区停车场乱收费
旅行社纠纷
    旅行社擅自更改行程|旅行社取消行程不退款|报的旅游团和宣传的不一样
菜市场管理
    菜市场环境脏乱|菜市场摊位费上涨|菜市场周边占道卖菜
商场服务
    商场营业员态度差|商场电梯扶梯故障|商场停车收费不合理
便民网点
    希望小区附近开一家便利店|早餐店太少|修鞋配钥匙的便民摊点被取消了
健身卡退费
    健身房倒闭了，会员卡退不了费|健身房转让后不认老会员卡|私教课程退费难
美发卡退费
    理发店充值后关门了|美容院办卡后不让退|美发店推销办卡后服务变差
商家跑路
    充值的卡商家关门跑路了|预付费的店突然停业|商家卷款跑路，几百个会员维权
快递丢件
    快递丢件快递公司不赔偿|快递被别人冒领|快递显示签收但没收到
快递柜收费
    快递柜超时收费|快递员不经同意放快递柜|快递不送上门只放驿站
外卖配送
    外卖骑手闯红灯逆行|外卖送餐超时还态度差|外卖电动车在小区里横冲直撞
过期食品
    超市货架上在卖过期食品|买的牛奶已经过期了|便利店把过期面包改了日期继续卖
餐馆卫生
    饭店后厨卫生条件很差|在餐馆吃饭吃出了虫子|外卖餐品里有异物
无证食品经营
    小作坊无证生产食品|路边摊卖的熟食没有任何证照|网上卖自制食品没有许可证
食物中毒
    吃了饭店的菜后上吐下泻|学校食堂疑似食物中毒|多人吃了同一家店的外卖后腹泻
乱收费
    商家收取不合理的服务费|停车场乱收费|开锁师傅上门后坐地起价
价格欺诈
    商家先提价再打折|结账价格和标价不一致|促销活动价格欺诈
明码标价
    商品没有明码标价|菜价不标价随口要价|理发店价目表不公示
产品质量
    买的电器用了几天就坏了|买到假冒伪劣商品|新买的家具甲醛超标
虚假宣传
    保健品虚假宣传能治病|直播间虚假宣传|商家宣传的功效和实际不符
退换货
    商家拒绝七天无理由退货|质量问题商家不给换货|网购商品退货商家不退款
售后服务
    空调安装后漏水售后不管|手机维修被换了零件|售后电话一直打不通
缺斤短两
    菜市场摊位缺斤短两|水果店秤有问题，少了好几两|买的海鲜分量不足
电梯年检
    电梯年检合格证过期了|电梯没有维保记录|商场扶梯没有检验标志
加油站计量
    加油站加油机计量不准|加了四十升油箱装不下|加油站少加油多收钱
营业执照
    营业执照办理流程|营业执照经营范围变更|营业执照注销
个体户注册
    个体工商户注册需要什么材料|个体户网上登记|个体户名称核准
企业年报
    企业年报怎么填报|年报逾期被列入异常名录|企业年报补报
打架斗殴
    街上有人打架，已经有人流血了|饭店门口一群人在斗殴|有人持棍棒打人
盗窃
    家里被盗了，门锁被撬|电动车在楼下被偷了|车窗被砸，车里的包被偷
可疑人员
    小区里有陌生人挨家挨户敲门|有人在楼道里鬼鬼祟祟|可疑人员在学校附近徘徊
聚众赌博
    出租屋里有人聚众赌博|棋牌室里赌博|有人在小区车库里开赌局
火情
    楼里冒出浓烟，好像着火了|小区电动车着火了|路边垃圾桶起火
消防通道堵塞
    消防通道被杂物堵住|消防车通道上停满了私家车|楼道里堆满杂物
电动车充电
    有人把电动车推进楼道充电|居民从楼上拉电线飞线充电|电动车停在楼梯间充电
消防设施损坏
    楼道里灭火器过期了|消火栓没有水|消防应急灯不亮
企业安全隐患
    工厂员工没有任何防护措施|仓库违规住人|厂房里堆放易燃物品
危化品
    居民楼里有人私自存放液化气罐|小作坊违规储存化学品|有人无证销售危化品
高空坠物
    楼上有人往下扔垃圾|外墙瓷砖掉下来差点砸到人|阳台花盆没有固定随时会掉
户口迁移
    户口迁入需要什么材料|集体户口迁出|新生儿上户口
身份证办理
    身份证丢了怎么补办|异地办理身份证|身份证到期换领
居住证
    居住证办理条件|居住证签注|居住证积分查询
电话诈骗
    接到冒充公检法的诈骗电话|有人冒充客服让我转账|接到冒充领导借钱的电话
网络诈骗
    网上刷单被骗了几万元|网络投资理财平台提现不了|网购遇到钓鱼链接被盗刷
低保申请
    低保申请条件|低保审批进度|低保金发放标准
临时救助
    家里遭遇变故申请临时救助|因病致贫申请救助|临时救助金发放
特困供养
    特困人员供养|五保户待遇|孤寡老人供养
养老院
    养老院收费太高|养老院护工虐待老人|公办养老院排队很久
居家养老
    居家养老服务申请|助餐助浴服务|家里老人需要上门照护
高龄补贴
    高龄津贴申领|八十岁以上老人补贴|高龄补贴没有按时发放
老年食堂
    社区老年食堂饭菜质量差|希望开办老年食堂|老年食堂价格上涨
婚姻登记
    结婚登记预约|离婚登记需要什么材料|婚姻登记处节假日是否办公
殡葬服务
    殡仪馆收费不透明|丧事办理流程|殡葬车辆收费
公墓管理
    公墓价格太贵|墓地管理费上涨|公墓环境差
残疾人补贴
    残疾人两项补贴申请|残疾证办理|残疾人护理补贴
无障碍设施
    盲道被占用|公共场所没有无障碍通道|无障碍卫生间被锁
留守儿童
    留守儿童关爱|困境儿童救助|儿童福利补贴
邻里纠纷
    楼上邻居天天跺脚拖椅子|邻居在楼道堆放杂物|邻居家狗天天叫
社区服务
    社区工作人员态度差|社区盖章办事难|社区活动室不开放
流浪乞讨
    路边有流浪人员露宿|天桥下有流浪老人需要救助|地铁口有人强行乞讨
公租房申请
    公租房申请条件|公租房配租进度|公租房租金标准
人才公寓
    人才公寓申请|人才租房补贴|人才公寓入住
保障房分配
    保障房分配不公|保障房摇号结果|安置房分配进度
租赁纠纷
    房东不退押金|房东突然涨房租|租的房子漏水房东不修
群租房
    隔壁房子被隔成很多间群租|群租房人员复杂进出频繁|一套房住了二十多个人
中介纠纷
    中介收了定金不退|中介隐瞒房屋问题|中介乱收服务费
不动产登记
    不动产权证办理|房产证加名字|不动产登记预约
商品房交付
    开发商延期交房|交房时房屋面积缩水|开发商不按合同交付
房屋质量
    新房墙面开裂|房子漏水开发商不修|房屋质量问题维修难
公积金提取
    公积金提取条件|租房提取公积金|离职后公积金提取
公积金贷款
    公积金贷款额度|公积金贷款审批进度|公积金贷款办理流程
公积金缴存
    公司没有给员工缴公积金|公积金缴存基数|公积金账户转移
加装电梯
    老旧小区加装电梯|加装电梯补贴|加装电梯一楼住户反对
外墙脱落
    外墙瓷砖脱落砸坏了车|楼房外墙保温层脱落|外立面墙皮大面积脱落
管网改造
    老旧小区雨污管网改造|小区改造施工进度太慢|改造后路面没有恢复
农资质量
    买到假种子，庄稼出不了苗|化肥质量有问题|农药没有效果
农机补贴
    农机购置补贴申请|农机补贴没有到账|农机补贴标准
种植补贴
    耕地地力补贴|种粮补贴发放|水稻种植补贴
畜禽防疫
    猪场防疫|鸡鸭免疫|动物疫病防控
病死畜禽
    河里有死猪漂浮|有人随意丢弃病死家禽|病死畜禽没有无害化处理
流浪犬
    村里流浪狗很多追着人咬|流浪犬伤人|有人养大型犬不拴绳
宅基地
    宅基地审批|宅基地建房审批|宅基地纠纷
土地流转
    土地流转费用拖欠|土地流转合同纠纷|村里强制土地流转
村务公开
    村里财务不公开|村干部优亲厚友|村集体资金使用不透明
农村厕所
    农村户厕改造|公共厕所脏乱|改厕后化粪池满了没人清
农村污水
    村里生活污水直排|农村污水管网没接通|污水处理设施不运行
养殖污染
    养猪场粪便直排|养殖场臭味扰民|养鸭场污染水塘
停水
    家里突然停水了也没有通知|小区停水一整天了|停水后来水是浑浊的
水压低
    高层水压太低，洗澡都不行|早晚用水高峰水压不足|水龙头出水很小
水质问题
    自来水发黄有异味|水里有沉淀物|自来水有一股消毒水味道
水费
    水费突然变高了|水表不准|阶梯水价怎么算
停电
    家里突然停电了|小区频繁停电|停电没有提前通知
电压不稳
    电压不稳，灯一闪一闪|电压太低空调开不起来|电压不稳烧坏了电器
电费
    电费比平时高了很多|电表计量不准|峰谷电价怎么申请
燃气泄漏
    家里闻到很浓的煤气味|楼道里有燃气泄漏的味道|燃气管道漏气
燃气供应
    燃气开户|燃气管道安装|燃气停气没有通知
燃气费
    燃气费异常偏高|燃气表计量有问题|燃气缴费
信号差
    小区手机信号很差|家里手机没有信号|地下车库没有信号
宽带故障
    宽带经常断网|宽带报修没人上门|宽带网速太慢
骚扰电话
    每天接到好几个推销电话|骚扰短信不断|营销电话半夜打过来
道路积水
    下大雨后道路严重积水，车辆熄火|下穿通道积水很深|路口积水没过脚踝
小区内涝
    小区地下车库进水了|一楼住户家里进水|小区排水不畅一下雨就淹
河道水位
    河道水位上涨很快|河堤有渗漏|河道闸门没有及时开启
"""


def _parse_blocks(text: str) -> list[tuple[str, str]]:
    """Blocks of a head line followed by indented continuation lines (joined without separator): keeps the
    data tables readable and within the line length even though each Chinese character counts double."""
    out: list[tuple[str, str]] = []
    for line in text.strip("\n").splitlines():
        if line.startswith(" "):
            head, body = out[-1]
            out[-1] = (head, body + line.strip())
        elif line.strip():
            out.append((line.strip(), ""))
    return out


ISSUES: dict[str, tuple[str, ...]] = {k: tuple(v.split("|")) for k, v in _parse_blocks(_ISSUES_TEXT)}

# Level-3 categories whose phrases are topics to ask about rather than problems to complain about: their
# requests lean to consultation and the templates phrase them as questions.
_TOPIC_LIKE = set(
    _words(
        "养老保险 失业保险 工伤认定 社保缴费 就业补贴 职业培训 创业扶持 医保报销 医保卡办理 异地就医备案",
        "入学报名 幼儿园入园 托育服务 疫苗接种 健康证办理 生育登记 出生医学证明 母婴保健 营业执照",
        "个体户注册 企业年报 户口迁移 身份证办理 居住证 低保申请 临时救助 特困供养 居家养老 高龄补贴",
        "婚姻登记 残疾人补贴 留守儿童 公租房申请 人才公寓 不动产登记 公积金提取 公积金贷款 公积金缴存",
        "加装电梯 农机补贴 种植补贴 畜禽防疫 宅基地 燃气供应 殡葬服务 图书馆服务 体育场馆",
    )
)
# Problems that are emergencies or often urgent.
_EMERGENCY = {"火情", "燃气泄漏", "急救求助", "打架斗殴", "交通事故", "食物中毒"}
_OFTEN_URGENT = {
    "停水",
    "停电",
    "电梯故障",
    "高空坠物",
    "道路积水",
    "小区内涝",
    "井盖缺失",
    "盗窃",
    "河道水位",
    "外墙脱落",
    "广告牌安全",
    "排水管网堵塞",
    "流浪乞讨",
    "病死畜禽",
}

# -------------------------------------------------------------------------------------------------- templates
# "kind|title|detail" per first-level category. Slots: {addr} {loc} {issue} {issue2} {topic} {l2} {when} {dur}
# {times} {hour} {who} {amount} {ask} {aspect} {n} {shop} {company} {school} {hospital} {route} {thanks_unit}.
_TEMPLATES_RAW: dict[str, str] = {
    "城乡建设": """
complaint|{loc}{topic}问题
    {when}，{addr}{issue}。{who}已经反映过{times}，问题一直没有解决。{ask}
complaint|投诉{loc}{topic}
    本人住在{addr}，{issue}，已经持续{dur}了，严重影响居民生活。{ask}
report|举报{loc}{topic}
    举报：{addr}{issue}，{issue2}，请城管、住建部门到现场查处。{ask}
help|{loc}{topic}求助
    您好，{addr}{issue}，{who}每天都要经过这里，担心出事，请帮忙联系相关部门处理。{ask}
consultation|咨询{topic}{aspect}
    请问{topic}方面{aspect}？我家在{addr}，最近遇到{issue}的情况，想了解一下该找哪个部门。
suggestion|关于{loc}{topic}的建议
    建议对{addr}的{l2}进行一次全面排查，{issue}的情况不止一处，希望建立长效管理机制。
complaint|{loc}{topic}{dur}无人处理
    {addr}{issue}，打过物业和社区电话都说不归他们管，{dur}了还是老样子。{ask}
praise|表扬{thanks_unit}
    之前反映{addr}{issue}的问题，{thanks_unit}的工作人员第二天就到现场处理好了，效率很高，特此感谢！
report|{loc}发现{topic}
    路过{addr}时发现{issue}，{hour}左右看到的，存在安全隐患，请尽快派人查看。
""",
    "环境保护": """
complaint|{loc}{topic}扰民
    {when}，{addr}{issue}，{who}被影响得很厉害，窗户都不敢开。{ask}
complaint|投诉{loc}{topic}
    投诉{addr}{issue}，{hour}最严重，已经持续{dur}。希望环保部门上门检测并处罚。{ask}
report|举报{loc}{topic}
    实名举报{addr}{issue}，{issue2}，有照片和视频可以提供，请生态环境部门依法查处。
help|{loc}{topic}问题求助
    {addr}{issue}，家里有老人和孩子，长期下去对身体不好，请帮忙协调解决。{ask}
consultation|咨询{topic}{aspect}
    请问遇到{issue}这种情况{aspect}？有没有相关的环保标准可以参考？
suggestion|建议加强{loc}{l2}治理
    {addr}一带{issue}，建议环保和城管部门加大巡查力度，增加监测点，定期公布结果。
complaint|{loc}{topic}反复出现
    {addr}{issue}，之前处理过一次，没过多久又恢复原样，{times}反映都没有根治。{ask}
praise|感谢{thanks_unit}治理{topic}
    {addr}{issue}的问题已经解决了，现在环境好多了，感谢{thanks_unit}的认真负责。
report|{loc}{topic}严重
    {when}{hour}，{addr}{issue}，周边居民意见很大，请尽快安排人员到现场调查取证。
""",
    "交通运输": """
complaint|投诉{topic}问题
    {when}在{addr}遇到{issue}，{who}出行受到很大影响。{ask}
complaint|{loc}{topic}
    {addr}附近{issue}，每天{hour}前后情况最严重，已经持续{dur}。{ask}
help|{loc}{topic}求助
    您好，{addr}{issue}，请交通和交警部门帮忙处理一下。{ask}
consultation|咨询{topic}{aspect}
    请问{route}的{topic}{aspect}？我住在{addr}，每天坐车上班。
suggestion|建议优化{loc}{l2}
    建议在{addr}附近增设公交站点并优化{route}线路，{issue}的问题就能缓解。
report|举报{topic}
    举报：{when}在{addr}，{issue}，车牌号已经拍下来了，请依法处理。
complaint|{topic}问题投诉
    乘坐{route}时{issue}，{who}很生气，希望交通运输局加强管理。{ask}
praise|表扬{route}驾驶员
    {when}乘坐{route}，驾驶员帮助{who}上下车，还帮忙找回了遗失的包，非常感谢！
suggestion|关于{topic}的建议
    {addr}{issue}，建议交警部门重新规划车道、调整信号灯配时。
""",
    "劳动和社会保障": """
consultation|咨询{topic}{aspect}
    您好，请问{topic}{aspect}？我在{company}上班，{dur}前入职，想了解一下相关政策。
consultation|{topic}怎么办理
    请问{issue}怎么办理？需要带哪些材料，可以在网上办吗？我的社保在{district}缴纳。
complaint|投诉{company}{topic}
    本人在{company}工作，{issue}，涉及金额{amount}，多次找老板都推脱。{ask}
complaint|{company}{topic}问题
    {when}，{company}{issue}，有十几个工友都是这种情况，希望劳动监察部门介入。
help|求助{topic}
    {who}在{company}打工，{issue}，家里等着这笔钱过日子，实在没有办法了，请政府帮帮我们。
report|举报{company}{topic}
    举报{company}（地址：{addr}）{issue}，用工不规范，请人社部门查处。
suggestion|关于{topic}的建议
    建议简化{topic}的办理流程，{issue}这类事项最好能全程网上办理，少跑几趟。
praise|感谢人社局帮助追回工资
    之前反映{company}{issue}，经过劳动监察大队协调，{amount}已经全部拿到了，非常感谢！
consultation|{topic}政策咨询
    想问一下{topic}的{aspect}，本人是灵活就业人员，{dur}前在{district}参保。
""",
    "教育文体": """
consultation|咨询{topic}{aspect}
    请问{topic}{aspect}？孩子今年{n}岁，户籍在{district}，住在{addr}。
consultation|{school}{topic}咨询
    您好，想了解{school}的{topic}，{aspect}？
complaint|投诉{school}{topic}
    {school}{issue}，家长们意见很大，{ask}
complaint|{loc}{topic}问题
    {when}，{addr}附近{issue}，孩子们的安全和权益得不到保障。{ask}
report|举报{topic}
    举报：{addr}{issue}，已经有几十个孩子在里面上课，请教育局查处。
suggestion|建议{l2}方面的改进
    建议教育部门关注{topic}，{issue}的问题比较普遍，希望出台更细的规定。
help|{topic}求助
    {who}{issue}，{dur}了一直没解决，钱是家里省吃俭用攒的，请帮忙协调。
praise|表扬{school}老师
    {school}的老师对孩子非常耐心负责，孩子进步很大，特此表扬！
complaint|{school}附近{topic}
    {school}旁边{issue}，上学放学时段尤其明显，请有关部门管一管。
""",
    "卫生健康": """
complaint|投诉{hospital}{topic}
    {when}在{hospital}就诊，{issue}，{ask}
complaint|{hospital}{topic}问题
    {who}到{hospital}看病，{issue}，希望卫健委加强管理。
consultation|咨询{topic}{aspect}
    请问{topic}{aspect}？我住在{addr}，离{hospital}比较近。
consultation|{topic}办理咨询
    想咨询一下{issue}的事情，{aspect}？
help|{topic}求助
    {addr}，{issue}，请帮忙联系医疗机构！{ask}
report|举报{loc}{topic}
    举报{addr}{issue}，存在健康风险，请卫生部门检查。
suggestion|关于{hospital}{topic}的建议
    建议{hospital}增加{topic}相关的服务窗口，{issue}的现象比较普遍。
praise|感谢{hospital}医护人员
    {who}在{hospital}住院期间，医生护士照顾得非常周到，特此表扬感谢！
complaint|{loc}{topic}
    {addr}{issue}，{dur}了没人处理，影响附近居民健康。{ask}
""",
    "商贸旅游": """
complaint|投诉{shop}{topic}
    {when}在{addr}的{shop}{issue}，涉及金额{amount}。{ask}
complaint|{topic}问题
    {issue}，{who}和很多消费者都遇到了，找商家协商没有结果。{ask}
help|{topic}求助
    {issue}，一共花了{amount}，现在联系不上负责人，请帮忙处理。
consultation|咨询{topic}{aspect}
    请问遇到{issue}的情况{aspect}？
report|举报{loc}{shop}
    举报{addr}的{shop}{issue}，请商务部门核查。
suggestion|关于{l2}的建议
    建议加强对{l2}的监管，{issue}的情况经常发生，消费者维权成本太高。
complaint|{loc}{topic}
    {addr}{issue}，已经{dur}了，{ask}
praise|表扬{shop}服务
    {addr}的{shop}服务热情周到，帮{who}解决了问题，值得表扬。
""",
    "市场监管": """
complaint|投诉{shop}{topic}
    {when}在{addr}的{shop}，{issue}，商家态度恶劣。{ask}
report|举报{shop}{topic}
    举报：{addr}{shop}{issue}，已保留购物小票和照片，请市场监管部门查处。
complaint|{loc}{shop}{topic}
    {addr}的{shop}{issue}，金额{amount}，要求商家退一赔三。{ask}
help|{topic}问题求助
    {who}{issue}，和商家协商不成，请帮忙调解。
consultation|咨询{topic}{aspect}
    请问{topic}{aspect}？我准备在{addr}开一家{shop}。
consultation|{topic}办理
    想咨询{issue}，需要什么材料，{aspect}？
suggestion|建议加强{l2}检查
    建议市场监管部门加强对{loc}周边{shop}的检查，{issue}的问题时有发生。
report|{loc}{topic}
    {addr}{issue}，{when}已经发现好几次了，请尽快核查。
praise|感谢市场监管局
    之前投诉{shop}{issue}，市场监管所很快就处理了，退还了{amount}，感谢！
""",
    "公共安全": """
report|{loc}{topic}
    {addr}{issue}，{hour}左右发生的，请尽快派人处理！{ask}
help|{topic}求助
    {addr}{issue}，请马上派人来！
report|举报{loc}{topic}
    举报：{addr}{issue}，已经持续{dur}，周边居民很担心，请公安部门查处。
consultation|咨询{topic}{aspect}
    请问{topic}{aspect}？我的户籍在{district}。
complaint|{loc}{topic}隐患
    {addr}{issue}，物业劝了也不听，存在很大的安全隐患。{ask}
suggestion|关于{loc}{l2}的建议
    建议加强{addr}一带的{l2}检查，{issue}的情况比较多。
consultation|{topic}怎么办
    {who}{issue}，请问{aspect}？
praise|感谢派出所民警
    {when}{issue}，民警很快到场处理，帮我们挽回了损失，特此感谢！
report|{loc}发现{topic}
    {when}{hour}，在{addr}发现{issue}，请相关部门处理。
""",
    "民政": """
consultation|咨询{topic}{aspect}
    请问{topic}{aspect}？{who}今年{n}岁，户口在{district}。
consultation|{topic}办理流程
    想了解一下{issue}，{aspect}？需要到社区还是街道办理？
help|{topic}求助
    {who}{issue}，家庭条件困难，请政府帮帮忙。
complaint|投诉{loc}{topic}
    {addr}{issue}，{dur}了问题一直存在。{ask}
complaint|{loc}{topic}问题
    {when}，{addr}{issue}，社区调解了{times}还是没用。{ask}
suggestion|关于{topic}的建议
    建议在{loc}附近{issue}，方便老人和残疾人。
report|{loc}{topic}
    {addr}{issue}，天气变化大，请民政部门尽快救助。
praise|感谢{thanks_unit}
    {who}在办理{topic}时，{thanks_unit}的工作人员上门服务，非常贴心，特此感谢。
""",
    "住房保障": """
consultation|咨询{topic}{aspect}
    请问{topic}{aspect}？本人在{district}工作{dur}，目前在{addr}租房。
consultation|{topic}政策咨询
    想了解{issue}，{aspect}？
complaint|投诉{loc}{topic}
    {addr}{issue}，多次沟通没有结果。{ask}
complaint|{topic}问题
    {when}，{issue}，涉及金额{amount}，希望房管部门介入。{ask}
help|{topic}求助
    {who}{issue}，{dur}了一直没有进展，请帮忙协调。
report|举报{loc}{topic}
    举报{addr}{issue}，存在消防和治安隐患，请相关部门查处。
suggestion|关于{topic}的建议
    建议{topic}的办理流程更加公开透明，{issue}的信息能在网上随时查询。
praise|感谢房管局
    {topic}的事情已经办好了，工作人员耐心讲解政策，特此感谢。
""",
    "农业农村": """
complaint|投诉{loc}{topic}
    {addr}{issue}，村里{who}意见很大。{ask}
consultation|咨询{topic}{aspect}
    请问{topic}{aspect}？我家在{addr}。
help|{topic}求助
    {addr}{issue}，请农业农村部门帮忙处理。{ask}
report|举报{loc}{topic}
    举报：{addr}{issue}，已经持续{dur}，请尽快调查。
complaint|{loc}{topic}问题
    {when}，{addr}{issue}，找村委会反映{times}都没解决。{ask}
suggestion|关于{l2}的建议
    建议镇里对{addr}一带的{l2}进行整治，{issue}的情况比较突出。
consultation|{topic}怎么申请
    想问一下{issue}，{aspect}？
praise|感谢镇村干部
    {addr}{issue}的问题已经解决了，感谢镇里和村里的干部。
""",
    "公用事业": """
complaint|{loc}{topic}
    {when}，{addr}{issue}，{ask}
help|{loc}{topic}求助
    {addr}{issue}，已经{dur}了，家里老人孩子很不方便，请尽快处理！
complaint|投诉{topic}问题
    {addr}{issue}，打客服电话一直没人接。{ask}
consultation|咨询{topic}{aspect}
    请问{topic}{aspect}？我家在{addr}。
report|{loc}{topic}紧急
    {addr}{issue}，{hour}发现的，情况紧急，请马上派人来处理！
suggestion|关于{l2}的建议
    建议{loc}一带提前排查{l2}设施，{issue}的情况每年都会发生。
complaint|{loc}{topic}反复出现
    {addr}{issue}，这个月已经第{n}次了。{ask}
praise|感谢抢修人员
    {addr}{issue}，抢修人员连夜施工修好了，辛苦了，特此感谢！
""",
}

_GENERIC_RAW = """
complaint|关于{loc}的投诉
    {when}{addr}{issue}。{ask}
complaint|反映{topic}问题
    你好，我要反映一下{addr}{issue}的问题，{dur}了。{ask}
report|反映{loc}情况
    {addr}{issue}，请相关部门核实处理。
help|请求帮助解决{topic}
    {who}遇到{issue}的问题，不知道找谁，请帮忙转给负责的部门。{ask}
consultation|{topic}相关咨询
    您好，咨询一下{topic}，{aspect}？
suggestion|市民建议
    建议有关部门重视{topic}问题，{issue}，希望能统筹解决。
praise|表扬信
    感谢{thanks_unit}帮助解决了{topic}的问题，办事效率高，态度好。
"""


def _parse(raw: str) -> list[tuple[str, str, str]]:
    out = []
    for head, detail in _parse_blocks(raw):
        kind, title = head.split("|")
        out.append((kind, title, detail))
    return out


TEMPLATES: dict[str, list[tuple[str, str, str]]] = {k: _parse(v) for k, v in _TEMPLATES_RAW.items()}
GENERIC_TEMPLATES = _parse(_GENERIC_RAW)

# How often each kind is asked for, per first-level category (weights in KINDS order). Consultations dominate
# the benefit and registration categories and are rare for nuisances; overall they are about 40%.
_KIND_WEIGHTS: dict[str, tuple[int, ...]] = {
    "城乡建设": (12, 18, 45, 12, 8, 5),
    "环境保护": (8, 12, 52, 16, 7, 5),
    "交通运输": (28, 12, 35, 8, 12, 5),
    "劳动和社会保障": (62, 12, 18, 3, 3, 2),
    "教育文体": (52, 8, 25, 5, 6, 4),
    "卫生健康": (45, 12, 28, 5, 5, 5),
    "商贸旅游": (25, 15, 45, 6, 5, 4),
    "市场监管": (35, 10, 35, 14, 3, 3),
    "公共安全": (35, 22, 12, 24, 4, 3),
    "民政": (58, 18, 12, 3, 5, 4),
    "住房保障": (60, 10, 20, 4, 4, 2),
    "农业农村": (40, 15, 25, 10, 6, 4),
    "公用事业": (30, 35, 25, 3, 4, 3),
}

_WHEN = _words(
    "最近一周 这几天 每天晚上 最近一个月 从上个月开始 今天早上 昨天晚上 这段时间 连续三天 每到周末",
    "今年以来 前天下午 最近半个月 一直以来",
)
_DUR = _words(
    "一个多月 半年多 两周 三四天 快一年 十来天 两个多月 一个星期 好几年 二十多天",
)
_TIMES = ("好几次", "三次", "多次", "两次", "不下五次", "很多次")
_HOUR = _words(
    "晚上十点 凌晨两点 早上六点 中午 下午三点 晚上八点 凌晨 傍晚 上午九点 深夜",
)
_WHO = _words(
    "我 我家老人 我们小区居民 我和邻居们 家里孩子 我母亲 附近商户 我们一家 本人 周边群众",
)
_ASPECT = _words(
    "需要哪些材料 在哪里办理 怎么申请 需要满足什么条件 多久能办好 可以网上办理吗 标准是多少",
    "政策有没有调整 流程是怎样的 要不要本人到场 收不收费 找哪个部门",
)
_SHOPS = _words(
    "超市 便利店 药店 餐馆 水果店 理发店 健身房 母婴店 烧烤店 网店 早餐店 家电卖场 培训机构 美容院",
    "面包店 海鲜摊",
)
_COMPANY_A = _words(
    "鑫达 恒通 华盛 宏远 佳美 兴业 顺发 金诚 永信 瑞祥 东升 天和",
)
_COMPANY_B = _words(
    "建筑工程有限公司 餐饮管理有限公司 物流有限公司 电子科技有限公司 装饰工程公司 服装厂 家政服务公司",
    "机械厂 商贸有限公司 保安服务公司",
)
_ASK = {
    "polite": (
        "麻烦相关部门尽快处理，谢谢！",
        "希望能尽快解决，谢谢。",
        "请帮忙协调处理。",
        "望予以答复，谢谢。",
        "辛苦了，盼回复。",
        "",
    ),
    "angry": (
        "已经反映{times}了一直没人管，太不负责任了！",
        "再不处理我就向上级部门反映！",
        "到底有没有人管？！",
        "这么长时间都解决不了，我们老百姓怎么办？",
        "希望这次不要再敷衍了事！",
    ),
    "urgent": (
        "情况比较紧急，请尽快派人到现场！",
        "请马上处理，以免发生危险！",
        "随时可能出事，请立即处理！",
    ),
    "neutral": ("请核实处理。", "请相关部门处理。", "希望有关部门重视。", ""),
}
_TONE_WEIGHTS = {
    "complaint": (3, 4, 1, 2),
    "report": (3, 1, 2, 4),
    "help": (4, 1, 3, 2),
}  # polite angry urgent neutral
_BUILDING = _words(
    "{n}幢 {n}幢{u}单元 {n}号楼 {n}栋{u}0{r}室 {n}幢{u}单元{r}0{r} 东门 南门口 北大门 地下车库",
    "{n}号楼楼下 门口 附近 对面",
)


class _Slots(dict[str, str]):
    """Template slots filled on first use, so a template only draws the random values it needs (and the draws
    happen in a fixed order, which keeps generation deterministic)."""

    def __init__(self, makers: dict[str, Any]) -> None:
        super().__init__()
        self.makers = makers

    def __missing__(self, key: str) -> str:
        value = str(self.makers[key]())
        self[key] = value
        return value


def build_address(
    rng: random.Random, city: DemoCity, grid_code: str, place: PlaceSpec | None, mode: str | None = None
) -> tuple[str, str]:
    """An address as a citizen or operator writes it, and the deepest area code the text itself determines.

    Completeness varies: the full chain 民声市…区…街道…社区 + place, district + street + place, the place
    alone, a community with its grid, the street only, the district only. Places are points in the gazetteer,
    so naming one determines its grid.
    """
    community = city.area_by_code[grid_code[:12]]
    street = city.area_by_code[grid_code[:9]]
    district = city.area_by_code[grid_code[:6]]
    grid = city.area_by_code[grid_code]
    dname = district.aliases[0] if rng.random() < 0.25 else district.name
    if mode is None:
        if place is not None:
            mode = rng.choices(
                ["full", "dsp", "place", "cp", "sp", "ds", "dc", "cg", "d"],
                weights=[14, 14, 30, 10, 8, 8, 8, 4, 2],
            )[0]
        else:
            mode = rng.choices(["full", "ds", "dc", "cg", "sc", "d"], weights=[20, 25, 25, 15, 10, 5])[0]
    detail = ""
    if place is not None:
        if place.kind == "路":
            detail = rng.choice(
                ["", f"{rng.randint(1, 399)}号", "沿线", "路口", f"{rng.randint(1, 199)}号门口"]
            )
        elif place.kind == "小区":
            detail = rng.choice(_BUILDING).format(
                n=rng.randint(1, 30), u=rng.randint(1, 4), r=rng.randint(1, 9)
            )
        else:
            detail = rng.choice(["", "", "门口", "附近", "旁边", "对面"])
        pname = place.name if not place.aliases or rng.random() < 0.8 else rng.choice(place.aliases)
    if mode == "full" and place is not None:
        return f"民声市{district.name}{street.name}{community.name}{pname}{detail}", place.grid_code
    if mode == "dsp" and place is not None:
        return f"{dname}{street.name}{pname}{detail}", place.grid_code
    if mode == "place" and place is not None:
        return f"{pname}{detail}", place.grid_code
    if mode == "cp" and place is not None:
        return f"{community.name}{pname}{detail}", place.grid_code
    if mode == "sp" and place is not None:
        return f"{street.name}{pname}{detail}", place.grid_code
    if mode == "full":
        return f"民声市{district.name}{street.name}{community.name}", community.code
    if mode == "ds":
        return f"{dname}{street.name}", street.code
    if mode == "dc":
        return f"{dname}{community.name}", community.code
    if mode == "cg":
        return f"{community.name}{grid.name}", grid.code
    if mode == "sc":
        return f"{street.name}{community.name}附近", community.code
    return f"{district.name}", district.code


def _pick_place(
    rng: random.Random, city: DemoCity, grid_code: str, kinds: tuple[str, ...] = ()
) -> PlaceSpec | None:
    places = city.places_by_grid.get(grid_code, [])
    if kinds:
        places = [p for p in places if p.kind in kinds] or places
    return rng.choice(places) if places else None


def _nearby(rng: random.Random, city: DemoCity, grid_code: str, kind: str) -> str:
    """A place of one kind near the grid: in its community, else in its street, else anywhere in the city."""
    cands = [p for p in city.places_by_community.get(grid_code[:12], []) if p.kind == kind]
    if not cands:
        for c in city.children.get(grid_code[:9], []):
            cands.extend(p for p in city.places_by_community.get(c.code, []) if p.kind == kind)
    if not cands:
        cands = [p for p in city.places if p.kind == kind]
    return rng.choice(cands).name if cands else kind


def generate_request(
    rng: random.Random,
    city: DemoCity,
    category_code: str,
    area_code: str,
    *,
    kind: str | None = None,
    with_gps: bool | None = None,
) -> RequestText:
    """A citizen's request about a category at a place of an area.

    ``category_code`` may be of any level (a level-3 descendant is drawn for levels 1-2); ``area_code`` of any
    level (a grid inside it is drawn). ``kind`` forces the request kind; ``with_gps`` forces whether a map
    point is attached (channels with GPS: app, WeChat, grid, Open311); by default it is drawn.
    """
    leaf = rng.choice(city.leaves_under(category_code))
    l2 = city.category_by_code[leaf.code[:4]]
    l1 = city.category_by_code[leaf.code[:2]]
    grid_code = rng.choice(city.grids_under(area_code)) if len(area_code) < 15 else area_code
    if kind is None:
        weights = list(_KIND_WEIGHTS.get(l1.name, (30, 15, 35, 10, 6, 4)))
        if leaf.name in _TOPIC_LIKE:
            weights[0] *= 8  # a topic is mostly asked about
        kind = rng.choices(KINDS, weights=weights)[0]
    own = [t for t in TEMPLATES.get(l1.name, []) if t[0] == kind]
    generic = [t for t in GENERIC_TEMPLATES if t[0] == kind]
    # Mostly category-specific wording; sometimes the plain wording any operator could have typed.
    pool = own if own and rng.random() < 0.85 else (generic or own)
    _, title_t, detail_t = rng.choice(pool)

    place_kinds: tuple[str, ...] = ()
    if l1.name in ("城乡建设", "交通运输", "公用事业"):
        place_kinds = ("路", "小区")
    elif l1.name in ("市场监管", "商贸旅游"):
        place_kinds = ("市场", "商场", "路")
    place = _pick_place(rng, city, grid_code, place_kinds) if rng.random() < 0.85 else None
    address, _ = build_address(rng, city, grid_code, place)
    community = city.area_by_code[grid_code[:12]]
    district = city.area_by_code[grid_code[:6]]
    issues = ISSUES[leaf.name]
    issue = rng.choice(issues)
    if leaf.name in _TOPIC_LIKE and kind != "consultation" and len(issue) <= 8:
        # Topic phrases are nouns (养老金领取资格认证); outside a question they need a verb to read as a
        # problem.
        issue = rng.choice(
            ["办理{}的事情一直没办成", "{}的问题没有解决", "遇到{}方面的困难", "{}迟迟没有结果"]
        ).format(issue)

    if kind in _TONE_WEIGHTS:
        tone = rng.choices(["polite", "angry", "urgent", "neutral"], weights=_TONE_WEIGHTS[kind])[0]
    else:
        tone = "polite"
    if leaf.name in _EMERGENCY and kind in ("help", "report", "complaint"):
        tone = "urgent"
    elif tone == "urgent" and leaf.name not in _OFTEN_URGENT:
        tone = "polite"  # nobody calls a price dispute "about to cause an accident"
    route = city.route(leaf.code, grid_code)
    thanks_unit = city.unit_by_code[route.lead_unit_code].name if route else "工作人员"

    slots: _Slots  # the "ask" filler refers back to the other slots
    slots = _Slots(
        {
            "addr": lambda: address,
            "loc": lambda: place.name if place is not None else community.name,
            "issue": lambda: issue,
            "issue2": lambda: rng.choice([i for i in issues if i != issue] or [issue]),
            "topic": lambda: leaf.name,
            "l2": lambda: l2.name,
            "when": lambda: rng.choice(_WHEN),
            "dur": lambda: rng.choice(_DUR),
            "times": lambda: rng.choice(_TIMES),
            "hour": lambda: rng.choice(_HOUR),
            "who": lambda: rng.choice(_WHO),
            "amount": lambda: rng.choice(
                [
                    f"{rng.randint(2, 98) * 100}元",
                    f"{rng.randint(1, 9)}万多元",
                    f"{rng.randint(3, 60)}000多元",
                    f"{rng.randint(50, 999)}元",
                ]
            ),
            "aspect": lambda: rng.choice(_ASPECT),
            "n": lambda: rng.randint(2, 12) if l1.name != "民政" else rng.randint(60, 95),
            "shop": lambda: rng.choice(_SHOPS),
            "company": lambda: rng.choice(_COMPANY_A) + rng.choice(_COMPANY_B),
            "school": lambda: _nearby(rng, city, grid_code, "学校"),
            "hospital": lambda: _nearby(rng, city, grid_code, "医院"),
            "route": lambda: rng.choice(["", "", "K", "B"]) + f"{rng.randint(1, 399)}路公交",
            "district": lambda: district.name,
            "thanks_unit": lambda: thanks_unit,
            "ask": lambda: rng.choice(_ASK[tone]).format_map(slots),
        }
    )
    title = title_t.format_map(slots)
    if not any(k in title_t for k in ("{loc}", "{school}", "{hospital}", "{shop}", "{company}")):
        # Operators name where a caller is from when the subject alone says little (咨询营业执照 × 1,000).
        street = city.area_by_code[grid_code[:9]]
        if rng.random() < 0.85:
            title = (
                rng.choice([f"{community.name}居民", street.name, f"{district.name}市民", community.name])
                + title
            )
    detail = detail_t.format_map(slots)
    if rng.random() < 0.04:
        # A second, unrelated problem in the same call: real requests mix topics, and classifiers must cope.
        other = rng.choice(list(ISSUES))
        detail += f"另外，{rng.choice(ISSUES[other])}，也请一并处理。"
    if rng.random() < 0.1:
        detail = rng.choice(["您好，", "你好，", "喂，", "工作人员你好，", "市民来电反映："]) + detail
    if kind == "praise" or kind == "consultation":
        urgency = "normal"
    elif leaf.name in _EMERGENCY:
        urgency = "emergency" if rng.random() < 0.8 else "urgent"
    elif tone == "urgent" or (leaf.name in _OFTEN_URGENT and rng.random() < 0.4):
        urgency = "urgent"
    else:
        urgency = "normal"

    if with_gps is None:
        with_gps = rng.random() < 0.3
    lat = lon = None
    if with_gps:
        lat, lon = city.random_point(rng, grid_code)
    return RequestText(
        title=title[:60],
        detail=detail,
        address=address,
        kind=kind,
        urgency=urgency,
        place_name=place.name if place is not None else None,
        lat=lat,
        lon=lon,
    )


def jurisdiction_test_set(
    city: DemoCity, n: int, seed: int = 7
) -> list[tuple[str, str, float | None, float | None]]:
    """``n`` (address_text, expected_area_code, lat, lon) cases for measuring jurisdiction accuracy.

    The expected code is the deepest area that the text and the point together determine: a named place
    determines its grid, a community alone its community, and so on; when a point is given (about 40% of
    cases) it lies in the expected grid, which then is the expected code. Addresses carry the noise that real
    ones do: district aliases (东城 for 东城区), place aliases, and trailing words like 附近/门口.
    """
    rng = random.Random(seed)
    out: list[tuple[str, str, float | None, float | None]] = []
    grids = city.grid_codes
    for _ in range(n):
        if rng.random() < 0.75:
            place = rng.choice(city.places)
            grid = place.grid_code
        else:
            place = None
            grid = rng.choice(grids)
        text, expected = build_address(rng, city, grid, place)
        lat = lon = None
        if rng.random() < 0.4:
            lat, lon = city.random_point(rng, grid)
            expected = grid
        if rng.random() < 0.15:
            text = rng.choice(["在", "位于", "就在", ""]) + text + rng.choice(["这边", "一带", "", "那里"])
        out.append((text, expected, lat, lon))
    return out


# Spoken ways of putting a place into a request: "{at}" is the place as build_address writes it (full chain,
# street + place, the place alone, …), "{issue}" the problem.
_SPOKEN_AT = (
    "{at}{issue}，{dur}了。{ask}",
    "我住在{at}，{issue}，{ask}",
    "你好，我是{at}的居民，{issue}，{dur}了没人管。{ask}",
    "{who}反映{at}这边{issue}。{ask}",
    "{when}{at}{issue}，{ask}",
    "就在{at}，{issue}，希望尽快处理。",
)
# The same requests without a place: generic location words only (小区, 街道, 路灯 …), which must not resolve.
_SPOKEN_NOWHERE = (
    "我们小区{issue}，{dur}了。{ask}",
    "{when}楼下{issue}，{ask}",
    "家门口{issue}，找了街道和社区都说不归他们管。{ask}",
    "{who}反映{issue}，路灯也一直不亮。{ask}",
    "单位附近的路口{issue}，{dur}了。{ask}",
    "{issue}，{ask}",
    "你好，小区物业说这事要找街道办，{issue}，{ask}",
)

# Everyday phrases whose words are also the bare names of many communities and streets (光明, 胜利, 团结, 和平,
# 人民 …): in free text they must be read as words, not as places.
_LOOKALIKE_FILLERS = (
    "这关系到人民群众的切身利益。",
    "大家都希望邻里之间和平共处。",
    "街坊邻居都很团结，一起来反映。",
    "希望生活越来越幸福。",
    "新华书店门口也是这个情况。",
    "光明正大地占道，没人管。",
    "坚持到问题解决就是胜利。",
    "希望建设部门也关注一下。",
    "盼着早日解放出来，过上太平日子。",
    "老人在向阳的地方晒太阳都不行。",
    "孩子在育才培训班上课也受影响。",
)


def detail_jurisdiction_test_set(
    city: DemoCity, n: int, seed: int = 7, share_nowhere: float = 0.25
) -> list[tuple[str, str, str | None]]:
    """``n`` (title, detail, expected_area_code) cases where only the request's own words say where.

    The place is told the way callers tell it: as an address inside a sentence (any completeness of
    :func:`build_address`), a named place, a street alias with a community alias ("五里马鞍那边"), or a
    community named in the title. ``expected_area_code`` is the deepest area the words determine. About
    ``share_nowhere`` of the cases name no place at all (only 小区, 街道, 路灯 …) and expect None: they measure
    false positives. About 30% of all cases end with an everyday phrase whose words are also bare area names
    (人民群众, 和平共处, 团结 …), as real requests do. Separate from :func:`generate_request`, whose output the seeded demo depends on.
    """
    rng = random.Random(seed)
    out: list[tuple[str, str, str | None]] = []
    grids = city.grid_codes
    leaves = list(ISSUES)
    for _ in range(n):
        leaf = rng.choice(leaves)
        issue = rng.choice(ISSUES[leaf])
        fill = {
            "issue": issue,
            "dur": rng.choice(_DUR),
            "when": rng.choice(_WHEN),
            "who": rng.choice(_WHO),
            "ask": rng.choice(_ASK[rng.choice(["polite", "neutral", "urgent"])]),
        }
        title = rng.choice([f"{leaf}问题", f"反映{leaf}", f"关于{leaf}的诉求", leaf])
        filler = rng.choice(_LOOKALIKE_FILLERS) if rng.random() < 0.3 else ""
        if rng.random() < share_nowhere:
            out.append((title, rng.choice(_SPOKEN_NOWHERE).format(**fill) + filler, None))
            continue
        place: PlaceSpec | None
        if rng.random() < 0.7:
            chosen = rng.choice(city.places)
            place, grid = chosen, chosen.grid_code
        else:
            place = None
            grid = rng.choice(grids)
        community = city.area_by_code[grid[:12]]
        street = city.area_by_code[grid[:9]]
        style = rng.random()
        if style < 0.7:
            at, expected = build_address(rng, city, grid, place)
        elif style < 0.8 and street.aliases and community.aliases:
            # Two bare names that only together say where: the weakest evidence accepted.
            at, expected = f"{street.aliases[0]}{community.aliases[0]}", community.code
            at += rng.choice(["那边", "这块", "一带", ""])
        elif style < 0.9 or place is None:
            at, expected = rng.choice(["", street.name]) + community.name, community.code
        else:
            at, expected = place.name, place.grid_code
        detail = rng.choice(_SPOKEN_AT).format(at=at, **fill)
        if rng.random() < 0.1:
            # Operators often put the caller's community in the title and leave the detail bare.
            title, detail = f"{community.name}居民反映{leaf}", rng.choice(_SPOKEN_NOWHERE).format(**fill)
            expected = community.code
        out.append((title, detail + filler, expected))
    return out
