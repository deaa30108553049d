// 统计分析 charts (ECharts): the trend, the ranking bars and the map; every point links to what is behind it.
(function () {
  "use strict";
  function $(sel) { return document.querySelector(sel); }
  function go(url) { if (url) { window.location.href = url; } }

  function trend(el, d) {
    var chart = echarts.init(el);
    chart.setOption({
      tooltip: { trigger: "axis" },
      legend: { top: 0, data: ["受理量", "去年同期受理量", "办结率"] },
      grid: { left: 48, right: 48, top: 32, bottom: 40 },
      xAxis: { type: "category", data: d.labels, axisLabel: { fontSize: 11 } },
      yAxis: [{ type: "value", name: "件" }, { type: "value", name: "%", min: 0, max: 100 }],
      series: [
        { name: "受理量", type: "bar", data: d.volume, itemStyle: { color: "#3b82f6" } },
        { name: "去年同期受理量", type: "line", data: d.volume_last_year, symbol: "none", lineStyle: { color: "#9ca3af", type: "dashed" }, itemStyle: { color: "#9ca3af" } },
        { name: "办结率", type: "line", yAxisIndex: 1, data: d.completion, itemStyle: { color: "#c0262d" }, connectNulls: true }
      ]
    });
    chart.on("click", function (p) { go(d.urls[p.dataIndex]); });
    return chart;
  }

  function ranking(el, d, label, unit) {
    var chart = echarts.init(el);
    var names = d.names.slice().reverse(), values = d.values.slice().reverse(), prev = d.previous.slice().reverse();
    var urls = d.urls.slice().reverse(), few = d.few.slice().reverse();
    chart.setOption({
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      legend: { top: 0, data: [label, "上期"] },
      grid: { left: 150, right: 40, top: 28, bottom: 20 },
      xAxis: { type: "value", axisLabel: { formatter: "{value}" + unit } },
      yAxis: { type: "category", data: names, axisLabel: { width: 140, overflow: "truncate" } },
      series: [
        { name: label, type: "bar", data: values.map(function (v, i) { return { value: v, itemStyle: { color: few[i] ? "#9ca3af" : "#c0262d" } }; }),
          label: { show: true, position: "right", formatter: "{c}" + unit, fontSize: 10 } },
        { name: "上期", type: "bar", data: prev, itemStyle: { color: "#d1d5db" }, barGap: "-100%", z: 0 }
      ]
    });
    chart.on("click", function (p) { go(urls[p.dataIndex]); });
    return chart;
  }

  function map(el, data, label) {
    var geo = JSON.parse(el.dataset.geo || "{}");
    if (!geo.features || !geo.features.length) { return null; }
    echarts.registerMap("stats-areas", geo);
    var chart = echarts.init(el);
    var vals = data.map(function (m) { return m.value; }).filter(function (v) { return v !== null; });
    // The colour scale spans the children's own values: near-equal districts still read apart.
    var max = vals.length ? Math.max.apply(null, vals) : 1, min = vals.length ? Math.min.apply(null, vals) : 0;
    if (max === min) { min = Math.max(0, max - 1); }
    chart.setOption({
      tooltip: { trigger: "item", formatter: function (p) { return p.name + "<br>" + label + "：" + (p.value === undefined || isNaN(p.value) ? "—" : p.value); } },
      visualMap: { min: min, max: max, left: 10, bottom: 10, text: ["高", "低"], calculable: true, inRange: { color: ["#fee2e2", "#f87171", "#b91c1c"] } },
      series: [{ type: "map", map: "stats-areas", roam: true, data: data, label: { show: true, fontSize: 11 },
        itemStyle: { borderColor: "#7a8fb0", areaColor: "#eef2f7" } }]
    });
    chart.on("click", function (p) { if (p.data) { go(p.data.url); } });
    return chart;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var node = $("#stats-data");
    if (!node || !window.echarts) { return; }
    var d = JSON.parse(node.textContent);
    var charts = [];
    if ($("#st-trend")) { charts.push(trend($("#st-trend"), d.trend)); }
    if ($("#st-rank")) { charts.push(ranking($("#st-rank"), d.ranking, d.measure, d.unit)); }
    if ($("#st-map")) { charts.push(map($("#st-map"), d.map, d.measure)); }
    document.body.dataset.chartsReady = "1";
    window.addEventListener("resize", function () { charts.forEach(function (c) { if (c) { c.resize(); } }); });
  });
})();
