// 热点分析: the city map with the hot places as points sized and coloured by heat (no inline script: the CSP).
(function () {
  "use strict";
  var LABELLED = 5; // the hottest places are named on the map; the others in their tooltip and the list below
  document.addEventListener("DOMContentLoaded", function () {
    var el = document.getElementById("hs-map");
    if (!el || !window.echarts) { return; }
    var geo = JSON.parse(el.dataset.geo || "{}");
    var points = JSON.parse(el.dataset.points || "[]");
    if (!geo.features || !geo.features.length) { return; }
    echarts.registerMap("areas", geo);
    var chart = echarts.init(el);
    var max = Math.max.apply(null, points.map(function (p) { return p.value[2]; }).concat([1]));
    chart.setOption({
      tooltip: { trigger: "item", formatter: function (p) {
        if (p.seriesType !== "effectScatter") { return p.name; }
        return p.name + "<br>热度 " + p.value[2] + " · " + p.data.topics + " 个热点 · " + p.data.count + " 件";
      } },
      geo: { map: "areas", roam: true, layoutCenter: ["50%", "50%"], layoutSize: "96%",
        label: { show: true, fontSize: 11, color: "#556" },
        itemStyle: { areaColor: "#eef3fb", borderColor: "#7a8fb0" }, emphasis: { itemStyle: { areaColor: "#dce8fb" } } },
      visualMap: { min: 0, max: max, dimension: 2, left: 8, bottom: 8, itemHeight: 90, text: ["热", "冷"], calculable: true,
        inRange: { color: ["#ffd666", "#ff7a45", "#c0262d"] } },
      series: [{ type: "effectScatter", coordinateSystem: "geo", data: points, rippleEffect: { scale: 2.5 },
        symbolSize: function (v) { return 8 + 24 * Math.sqrt(v[2] / max); },
        label: { show: true, position: "right", fontSize: 11, color: "#222", backgroundColor: "rgba(255,255,255,.8)",
          formatter: function (p) { return p.dataIndex < LABELLED ? p.data.short : ""; } } }]
    });
    window.addEventListener("resize", function () { chart.resize(); });
  });
})();
